"""The networks and volumes of a project: created (labelled with the project) before its
containers, removed by `down` only when they carry this project's label."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

from portside.compose import naming
from portside.compose.errors import ComposeError
from portside.compose.model import Project, Service
from portside.engine.interface import (
    Document,
    EngineAPI,
    NetworkCreate,
    VolumeCreate,
    doc_at,
    str_at,
)
from portside.errors import NotFound

Say = Callable[[str], None]


def networks_used(services: Iterable[Service]) -> list[str]:
    return sorted({n for s in services if not s.network_mode for n in s.networks})


def _lookup(inspect: Callable[[str], Document], kind: str, key: str, name: str,
            external: bool) -> Document | None:
    """The engine's record of a network or volume (`kind`), None when there is none; an
    external one must exist."""
    try:
        return inspect(name)
    except NotFound:
        if external:
            raise ComposeError("", f"{kind}s.{key}",
                               f"external {kind} \"{name}\" not found") from None
        return None


def _owner(doc: Document) -> str | None:
    """The project label of a network or volume; None when it has none."""
    labels = doc_at(doc, "Labels")
    return str_at(labels, naming.PROJECT) if naming.PROJECT in labels else None


def ensure_networks(engine: EngineAPI, project: Project, services: Iterable[Service],
                    say: Say) -> None:
    for key in networks_used(services):
        net = project.networks[key]
        found = _lookup(engine.networks.inspect, "network", key, net.name, net.external)
        if net.external:
            continue
        if found is not None:
            owner = _owner(found)
            if owner not in (None, project.name):
                say(f"WARN: network {net.name} belongs to project {owner}")
            continue
        ipam: Document | None = None
        if net.ipam:
            ipam = {"Driver": net.ipam.get("driver") or "default", "Config": [
                {k2: c[k1] for k1, k2 in (("subnet", "Subnet"), ("gateway", "Gateway"),
                                          ("ip_range", "IPRange")) if k1 in c}
                for c in net.ipam.get("config") or []]}
        try:
            engine.networks.create(NetworkCreate(
                name=net.name, driver=net.driver or "bridge", internal=net.internal,
                attachable=net.attachable, enable_ipv6=net.enable_ipv6,
                labels=naming.resource_labels(project, naming.NETWORK, key, net.labels),
                options=net.driver_opts, ipam=ipam))
        except NotFound:
            raise ComposeError("", f"networks.{key}", "the daemon has no network API"
                               " (POST /networks/create); use network_mode: host or"
                               " none") from None
        say(f"Network {net.name}  Created")


def ensure_volumes(engine: EngineAPI, project: Project, services: Iterable[Service],
                   say: Say) -> None:
    used = sorted({m.source for s in services for m in s.volumes
                   if m.type == "volume" and m.source})
    for key in used:
        vol = project.volumes[key]
        found = _lookup(engine.volumes.inspect, "volume", key, vol.name, vol.external)
        if vol.external:
            continue
        if found is None:
            engine.volumes.create(VolumeCreate(
                name=vol.name, driver=vol.driver or "local", options=vol.driver_opts,
                labels=naming.resource_labels(project, naming.VOLUME, key, vol.labels)))
            say(f"Volume {vol.name}  Created")


def remove_networks(engine: EngineAPI, project: Project, say: Say) -> None:
    """Remove the networks this project created: those of the model and any other that
    carries its label (a network dropped from the file since `up`)."""
    names = {n.name for n in project.networks.values() if not n.external}
    with contextlib.suppress(NotFound):
        for net in engine.networks.list():
            if _owner(net) == project.name:
                names.add(str_at(net, "Name"))
    for name in sorted(names):
        try:
            found = engine.networks.inspect(name)
        except NotFound:
            continue
        if _owner(found) == project.name:
            engine.networks.remove(name)
            say(f"Network {name}  Removed")


def remove_volumes(engine: EngineAPI, project: Project, say: Say) -> None:
    for vol in project.volumes.values():
        if vol.external:
            continue
        with contextlib.suppress(NotFound):
            found = engine.volumes.inspect(vol.name)
            if _owner(found) == project.name:
                engine.volumes.remove(vol.name)
                say(f"Volume {vol.name}  Removed")
