"""The networks and volumes of a project: created (labelled with the project) before its
containers, removed by `down` only when they carry this project's label."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from portside.compose import naming
from portside.compose.errors import ComposeError
from portside.compose.model import Service
from portside.errors import NotFound


def networks_used(services: Iterable[Service]) -> list[str]:
    return sorted({n for s in services if not s.network_mode for n in s.networks})


def _lookup(runner: Any, kind: str, key: str, name: str, external: bool
            ) -> dict[str, Any] | None:
    """The daemon's record of a network or volume (`kind`), None when there is none; an
    external one must exist."""
    try:
        found: dict[str, Any] = runner.client.get(f"/{kind}s/{name}")
    except NotFound:
        if external:
            raise ComposeError("", f"{kind}s.{key}",
                               f"external {kind} \"{name}\" not found") from None
        return None
    return found


def ensure_networks(runner: Any, services: Iterable[Service]) -> None:
    for key in networks_used(services):
        net = runner.project.networks[key]
        found = _lookup(runner, "network", key, net.name, net.external)
        if net.external:
            continue
        if found is not None:
            owner = (found.get("Labels") or {}).get(naming.PROJECT)
            if owner not in (None, runner.project.name):
                runner.say(f"WARN: network {net.name} belongs to project {owner}")
            continue
        body: dict[str, Any] = {
            "Name": net.name, "CheckDuplicate": True, "Driver": net.driver or "bridge",
            "Internal": net.internal, "Attachable": net.attachable,
            "EnableIPv6": net.enable_ipv6, "Options": net.driver_opts,
            "Labels": naming.resource_labels(runner.project, naming.NETWORK, key,
                                             net.labels)}
        if net.ipam:
            body["IPAM"] = {"Driver": net.ipam.get("driver") or "default", "Config": [
                {k2: c[k1] for k1, k2 in (("subnet", "Subnet"), ("gateway", "Gateway"),
                                          ("ip_range", "IPRange")) if k1 in c}
                for c in net.ipam.get("config") or []]}
        try:
            runner.client.post("/networks/create", body)
        except NotFound:
            raise ComposeError("", f"networks.{key}", "the daemon has no network API"
                               " (POST /networks/create); use network_mode: host or"
                               " none") from None
        runner.say(f"Network {net.name}  Created")


def ensure_volumes(runner: Any, services: Iterable[Service]) -> None:
    used = sorted({m.source for s in services for m in s.volumes
                   if m.type == "volume" and m.source})
    for key in used:
        vol = runner.project.volumes[key]
        found = _lookup(runner, "volume", key, vol.name, vol.external)
        if vol.external:
            continue
        if found is None:
            runner.client.post("/volumes/create", {
                "Name": vol.name, "Driver": vol.driver or "local",
                "DriverOpts": vol.driver_opts,
                "Labels": naming.resource_labels(runner.project, naming.VOLUME, key,
                                                 vol.labels)})
            runner.say(f"Volume {vol.name}  Created")


def remove_networks(runner: Any) -> None:
    """Remove the networks this project created: those of the model and any other that
    carries its label (a network dropped from the file since `up`)."""
    names = {n.name for n in runner.project.networks.values() if not n.external}
    with contextlib.suppress(NotFound):
        for net in runner.client.get("/networks") or []:
            if (net.get("Labels") or {}).get(naming.PROJECT) == runner.project.name:
                names.add(net["Name"])
    for name in sorted(names):
        try:
            found = runner.client.get(f"/networks/{name}")
        except NotFound:
            continue
        if (found.get("Labels") or {}).get(naming.PROJECT) == runner.project.name:
            runner.client.request("DELETE", f"/networks/{name}").read()
            runner.say(f"Network {name}  Removed")


def remove_volumes(runner: Any) -> None:
    for vol in runner.project.volumes.values():
        if vol.external:
            continue
        with contextlib.suppress(NotFound):
            found = runner.client.get(f"/volumes/{vol.name}")
            if (found.get("Labels") or {}).get(naming.PROJECT) == runner.project.name:
                runner.client.request("DELETE", f"/volumes/{vol.name}").read()
                runner.say(f"Volume {vol.name}  Removed")
