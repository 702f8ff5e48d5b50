"""Docker Engine API shapes of networks and endpoints (what `docker network inspect` and
`docker inspect`'s NetworkSettings show), built from our records. Pure functions."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from portside.network.ports import PortMapping
from portside.network.store import Attachment, Network

PSEUDO = {  # Docker's built-in networks besides `bridge`; a container joins them by mode
    "host": {"Driver": "host", "Scope": "local"},
    "none": {"Driver": "null", "Scope": "local"},
}
PSEUDO_IDS = {name: hashlib.sha256(f"portside-{name}".encode()).hexdigest() for name in PSEUDO}


def network_doc(net: Network, endpoints: Sequence[Attachment] = (), *,
                verbose_containers: bool = True) -> dict[str, Any]:
    """GET /networks/{id}: Docker's NetworkResource."""
    default = net.name == "bridge"
    options = dict(net.options)
    options.setdefault("com.docker.network.bridge.name", net.bridge)
    if default:
        options.setdefault("com.docker.network.bridge.default_bridge", "true")
    doc: dict[str, Any] = {
        "Name": net.name, "Id": net.id, "Created": net.created, "Scope": "local",
        "Driver": "bridge", "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": {},
                 "Config": [{"Subnet": net.subnet, "Gateway": net.gateway}]},
        "Internal": net.internal, "Attachable": False, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
        "Containers": {}, "Options": options, "Labels": dict(net.labels),
    }
    if verbose_containers:
        doc["Containers"] = {a.container_id: {
            "Name": a.container_name, "EndpointID": endpoint_id(a), "MacAddress": a.mac,
            "IPv4Address": f"{a.ip}/{a.prefix}", "IPv6Address": ""} for a in endpoints}
    return doc


def pseudo_doc(name: str) -> dict[str, Any]:
    return {"Name": name, "Id": PSEUDO_IDS[name], "Created": "0001-01-01T00:00:00Z",
            "Scope": "local", "Driver": PSEUDO[name]["Driver"], "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": None, "Config": []}, "Internal": False,
            "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""},
            "ConfigOnly": False, "Containers": {}, "Options": {}, "Labels": {}}


def endpoint_id(att: Attachment) -> str:
    return hashlib.sha256(f"{att.container_id}/{att.network_id}".encode()).hexdigest()


def endpoint_settings(att: Attachment) -> dict[str, Any]:
    """One entry of NetworkSettings.Networks."""
    return {
        "IPAMConfig": None, "Links": None, "Aliases": list(att.aliases) or None,
        "NetworkID": att.network_id, "EndpointID": endpoint_id(att), "Gateway": att.gateway,
        "IPAddress": att.ip, "IPPrefixLen": att.prefix, "IPv6Gateway": "",
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": att.mac,
        "DriverOpts": None, "DNSNames": None,
    }


def ports_doc(ports: Sequence[PortMapping], exposed: Sequence[str] = ()) -> dict[str, Any]:
    """NetworkSettings.Ports: {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]},
    exposed ports without a binding map to None."""
    out: dict[str, Any] = {key: None for key in exposed}
    for p in ports:
        out.setdefault(p.docker_key(), None)
        out[p.docker_key()] = [*(out[p.docker_key()] or []),
                               {"HostIp": p.host_ip or "0.0.0.0", "HostPort": str(p.host_port)}]
    return out


def network_settings(attachments: Sequence[Attachment], exposed: Sequence[str] = (),
                     sandbox: str = "") -> dict[str, Any]:
    """NetworkSettings of `docker inspect`; the top-level address fields are those of the
    default bridge endpoint, as in Docker."""
    ports = [p for a in attachments for p in a.ports]
    primary = next((a for a in attachments if a.network == "bridge"), None)
    return {
        "Bridge": "", "SandboxID": "", "SandboxKey": sandbox, "HairpinMode": False,
        "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
        "Ports": ports_doc(ports, exposed),
        "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
        "EndpointID": endpoint_id(primary) if primary else "",
        "Gateway": primary.gateway if primary else "",
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "IPAddress": primary.ip if primary else "",
        "IPPrefixLen": primary.prefix if primary else 0, "IPv6Gateway": "",
        "MacAddress": primary.mac if primary else "",
        "Networks": {a.network: endpoint_settings(a) for a in attachments},
    }


def port_lines(ports: Sequence[PortMapping], container_port: str = "") -> list[str]:
    """`docker port` output: "80/tcp -> 0.0.0.0:8080"."""
    want = container_port if "/" in container_port or not container_port \
        else f"{container_port}/tcp"
    return [f"{p.docker_key()} -> {p.host_ip or '0.0.0.0'}:{p.host_port}" for p in ports
            if not want or p.docker_key() == want]


def parse_ipam(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """(subnet, gateway) of a create request's IPAM.Config (the first IPv4 entry)."""
    for cfg in (body.get("IPAM") or {}).get("Config") or []:
        subnet = cfg.get("Subnet") or ""
        if subnet and ":" not in subnet:
            return subnet, cfg.get("Gateway") or None
    return None, None
