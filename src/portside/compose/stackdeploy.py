"""Converge a daemon to a `StackPlan` (`stack deploy`) and take a stack away (`stack rm`).

Networks, volumes, secrets and configs are made once and kept while they exist; a service
is created, updated only when its spec changed (the plan's hash label), or left alone, so
a re-deploy touches only what changed. Everything made carries the stack's namespace
label, which is how `remove` finds it again; external objects must already exist.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from portside.compose.stack import HASH_LABEL, NAMESPACE, Resource, StackPlan
from portside.engine.interface import (
    Document,
    Filters,
    NetworkCreate,
    NetworksAPI,
    VolumeCreate,
    VolumesAPI,
    doc_at,
    int_at,
    str_at,
)
from portside.errors import Conflict, NotFound, PortsideError
from portside.orchestrator.interface import ServicesAPI

REMOVE_PATIENCE = 30.0  # seconds a network or volume may stay in use by stopping tasks


class ObjectsAPI(Protocol):
    """Docker's secrets or configs, as far as a stack needs them."""

    def create(self, name: str, data: bytes | None,
               labels: dict[str, str] | None = None) -> str: ...
    def list(self, filters: Filters | None = None) -> list[Document]: ...
    def remove(self, ref: str) -> None: ...


class MissingExternal(NotFound):
    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"{kind} {name} is declared as external, but could not be found;"
                         f" create it first")
        self.kind, self.name = kind, name


@dataclass
class StackParts:
    """What a stack deploy talks to (injected: the daemon's, or in-memory ones in tests)."""

    networks: NetworksAPI
    volumes: VolumesAPI
    services: ServicesAPI
    secrets: ObjectsAPI
    configs: ObjectsAPI


@dataclass
class Outcome:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def _label(ns: str) -> Filters:
    return {"label": [f"{NAMESPACE}={ns}"]}


def _exists(inspect: Callable[[str], object], name: str) -> bool:
    try:
        inspect(name)
        return True
    except NotFound:
        return False


def deploy(plan: StackPlan, parts: StackParts, report: Callable[[str], None],
           prune: bool = False) -> Outcome:
    """Make what the plan names and is missing, then create or update its services."""
    services = parts.services
    for net in plan.networks:
        if _exists(parts.networks.inspect, net.name):
            continue
        if net.external:
            raise MissingExternal("network", net.name)
        report(f"Creating network {net.name}")
        b = net.body
        parts.networks.create(NetworkCreate(
            name=net.name, driver=b["Driver"], internal=b["Internal"],
            attachable=b["Attachable"], labels=b["Labels"], options=b["Options"],
            ipam=b.get("IPAM")))
    for vol in plan.volumes:
        if _exists(parts.volumes.inspect, vol.name):
            continue
        if vol.external:
            raise MissingExternal("volume", vol.name)
        parts.volumes.create(VolumeCreate(name=vol.name, driver=vol.body["Driver"],
                                           labels=vol.body["Labels"],
                                           options=vol.body["DriverOpts"]))
    for kind, api, wanted in (("secret", parts.secrets, plan.secrets),
                              ("config", parts.configs, plan.configs)):
        _objects(kind, api, wanted, report)
    existing = {str_at(s, "Spec", "Name"): s for s in services.list(_label(plan.namespace))}
    out = Outcome()
    for name, spec in plan.services.items():
        resolve_refs(spec, parts.secrets, parts.configs)
        current = existing.get(name)
        if current is None:
            report(f"Creating service {name}")
            services.create(spec)
            out.created.append(name)
        elif str_at(current, "Spec", "Labels", HASH_LABEL) == spec["Labels"][HASH_LABEL]:
            out.unchanged.append(name)
        else:
            report(f"Updating service {name} (id: {str_at(current, 'ID')})")
            services.update(str_at(current, "ID"), int_at(current, "Version", "Index"), spec)
            out.updated.append(name)
    for name, current in existing.items():
        if prune and name not in plan.services:
            report(f"Removing service {name}")
            services.remove(str_at(current, "ID"))
            out.removed.append(name)
    return out


class NoStore(PortsideError):
    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"{kind} {name}: this daemon keeps no {kind}s (its /{kind}s API is"
                         " missing)")
        self.kind, self.name = kind, name


class UnknownObject(NotFound):
    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"{kind} not found: {name}")
        self.kind, self.name = kind, name


def resolve_refs(spec: dict[str, Any], secrets: ObjectsAPI, configs: ObjectsAPI) -> None:
    """Fill the SecretID/ConfigID of the spec's references from their names, as Docker's
    CLI does before it sends a spec (the daemon wants IDs)."""
    container = spec.get("TaskTemplate", {}).get("ContainerSpec", {})
    for kind, key, api in (("secret", "Secrets", secrets), ("config", "Configs", configs)):
        refs = [r for r in container.get(key) or [] if not r.get(f"{kind.title()}ID")]
        if not refs:
            continue
        ids = {str_at(d, "Spec", "Name"): str_at(d, "ID") for d in api.list()}
        for ref in refs:
            name = ref.get(f"{kind.title()}Name", "")
            if name not in ids:
                raise UnknownObject(kind, name)
            ref[f"{kind.title()}ID"] = ids[name]


def _objects(kind: str, api: ObjectsAPI, wanted: list[Resource],
             report: Callable[[str], None]) -> None:
    if not wanted:
        return
    try:
        have = {str_at(d, "Spec", "Name") for d in api.list()}
    except NotFound:  # the route itself is missing: a daemon without a secrets store
        raise NoStore(kind, wanted[0].name) from None
    for item in wanted:
        if item.name in have:
            continue  # secrets and configs are immutable in Swarm: kept as made
        if item.external:
            raise MissingExternal(kind, item.name)
        report(f"Creating {kind} {item.name}")
        api.create(item.name, item.body["Data"], item.body["Labels"])


def _patiently(remove: Callable[[], None]) -> None:
    """Remove a network or volume that tasks being stopped may still hold."""
    deadline = time.monotonic() + REMOVE_PATIENCE
    while True:
        try:
            remove()
            return
        except NotFound:
            return
        except Conflict:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def remove(ns: str, parts: StackParts, report: Callable[[str], None]) -> bool:
    """Remove every service, network, volume, secret and config labelled with stack
    `ns`; False when there was none."""
    found = False
    for s in parts.services.list(_label(ns)):
        found = True
        report(f"Removing service {str_at(s, 'Spec', 'Name')}")
        parts.services.remove(str_at(s, "ID"))
    for kind, api in (("secret", parts.secrets), ("config", parts.configs)):
        try:
            items = api.list(_label(ns))
        except NotFound:
            continue  # a daemon without the route has none
        for item in items:
            found = True
            report(f"Removing {kind} {str_at(item, 'Spec', 'Name')}")
            api.remove(str_at(item, "ID"))
    for net in parts.networks.list(_label(ns)):
        found = True
        name = str_at(net, "Name")
        report(f"Removing network {name}")
        _patiently(functools.partial(parts.networks.remove, name))
    for vol in parts.volumes.list(_label(ns)):
        found = True
        name = str_at(vol, "Name")
        report(f"Removing volume {name}")
        _patiently(functools.partial(parts.volumes.remove, name))
    return found


def stacks(services: ServicesAPI) -> dict[str, int]:
    """Stack name -> number of services, from the services' namespace labels."""
    out: dict[str, int] = {}
    for s in services.list():
        ns = str_at(doc_at(s, "Spec", "Labels"), NAMESPACE)
        if ns:
            out[ns] = out.get(ns, 0) + 1
    return dict(sorted(out.items()))

