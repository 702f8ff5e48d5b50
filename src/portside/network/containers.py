"""What a container needs from the network layer, in Docker's terms, for the engine.

`setup` at start: read the container's Config/HostConfig (NetworkMode, PortBindings,
PublishAllPorts, ExposedPorts, Dns*, ExtraHosts, Hostname) and NetworkingConfig (aliases,
fixed addresses), make its network namespace, attach it, write /etc/hosts,
/etc/resolv.conf and /etc/hostname, and return what the runtime needs (the namespace for
ContainerSpec.network_namespace and the files to bind-mount). `teardown` at stop/remove
undoes all of it and may be called any number of times. `settings` is the
NetworkSettings of `docker inspect`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portside.network.docker import network_settings
from portside.network.errors import InvalidNetworkArgument
from portside.network.files import write_container_files
from portside.network.manager import DEFAULT_NETWORK, NetworkManager
from portside.network.netns import NETNS_DIR, create_netns, delete_netns
from portside.network.ports import PortMapping, parse_port_key
from portside.network.resolver import DnsSettings
from portside.network.store import Attachment


@dataclass
class EndpointRequest:
    network: str
    aliases: list[str] = field(default_factory=list)
    ip: str | None = None


@dataclass
class NetworkPlan:
    """The container's networking as asked: a mode and, for bridges, its endpoints."""

    mode: str  # "bridge" | "host" | "none" | "container"
    endpoints: list[EndpointRequest] = field(default_factory=list)
    ports: list[PortMapping] = field(default_factory=list)
    container: str = ""  # with mode "container": the other container's reference


@dataclass
class NetworkSetup:
    namespace: str | None  # for ContainerSpec.network_namespace ("host" or a path)
    files: dict[str, str]  # container path -> host path, to bind-mount
    attachments: list[Attachment]
    attach: Callable[[], list[Attachment]] | None = None  # setup(attach_later=True)


def port_mappings(config: dict[str, Any], host_config: dict[str, Any]) -> list[PortMapping]:
    """HostConfig.PortBindings (+ every ExposedPorts entry with PublishAllPorts)."""
    out: list[PortMapping] = []
    bound: set[tuple[int, str]] = set()
    for key, bindings in (host_config.get("PortBindings") or {}).items():
        lo, hi, proto = parse_port_key(key)
        for b in bindings or [{}]:
            host_ip = (b or {}).get("HostIp") or ""
            host_ip = "" if host_ip == "0.0.0.0" else host_ip
            text = str((b or {}).get("HostPort") or "0")
            h_lo, _, h_hi = text.partition("-")
            try:
                first, last = int(h_lo), int(h_hi or h_lo)
            except ValueError:
                raise InvalidNetworkArgument(f"invalid host port {text!r} for {key}") from None
            for i, cport in enumerate(range(lo, hi + 1)):
                if first and last > first and lo == hi:
                    out.append(PortMapping(host_ip, first, cport, proto, host_port_end=last))
                else:
                    out.append(PortMapping(host_ip, first + i if first else 0, cport, proto))
                bound.add((cport, proto))
    if host_config.get("PublishAllPorts"):
        for key in config.get("ExposedPorts") or {}:
            lo, hi, proto = parse_port_key(key)
            out.extend(PortMapping("", 0, p, proto) for p in range(lo, hi + 1)
                       if (p, proto) not in bound)
    return out


def port_bindings(mappings: list[PortMapping]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The other way, for a client: `-p` mappings -> (ExposedPorts, PortBindings)."""
    exposed: dict[str, Any] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for m in mappings:
        exposed[m.docker_key()] = {}
        port = f"{m.host_port}-{m.host_port_end}" if m.host_port_end else (
            str(m.host_port) if m.host_port else "")
        bindings.setdefault(m.docker_key(), []).append({"HostIp": m.host_ip, "HostPort": port})
    return exposed, bindings


def plan(config: dict[str, Any], host_config: dict[str, Any],
         networking_config: dict[str, Any] | None = None) -> NetworkPlan:
    mode = host_config.get("NetworkMode") or "default"
    endpoints_cfg = (networking_config or {}).get("EndpointsConfig") or {}
    if mode in ("host", "none"):
        return NetworkPlan(mode)  # Docker discards published ports in these modes
    if mode.startswith("container:"):
        return NetworkPlan("container", container=mode.partition(":")[2])
    first = DEFAULT_NETWORK if mode in ("default", "bridge") else mode
    names = [first, *[n for n in endpoints_cfg if n not in (first, mode)]]  # docker: "default"
    endpoints = []
    for name in names:
        cfg = endpoints_cfg.get(name)
        if cfg is None and name == first:
            cfg = endpoints_cfg.get(mode)
        cfg = cfg or {}
        ipam = cfg.get("IPAMConfig") or {}
        endpoints.append(EndpointRequest(name, list(cfg.get("Aliases") or []),
                                         ipam.get("IPv4Address") or None))
    return NetworkPlan("bridge", endpoints, port_mappings(config, host_config))


def netns_path(container_id: str) -> Path:
    return NETNS_DIR / container_id


def setup(manager: NetworkManager, container_id: str, name: str, config: dict[str, Any],
          host_config: dict[str, Any], container_dir: Path,
          networking_config: dict[str, Any] | None = None,
          joined_namespace: str | None = None, attach_later: bool = False) -> NetworkSetup:
    """Give a starting container its network; nothing is left behind when this raises.

    For `container:<ref>` the engine resolves the other container's namespace and passes
    it as `joined_namespace` (and mounts that container's files itself).

    With `attach_later`, a bridged container gets its namespace and its three files (to
    bind-mount) at once, and the returned `attach` does the rest: wire the namespace into
    its networks and fill the files in (in place: they may be mounted already). The engine
    runs it while the runtime creates the container, which needs only the namespace and
    the files to exist; the container's process starts after both. On failure `attach`
    undoes everything and raises.
    """
    p = plan(config, host_config, networking_config)
    hostname = str(config.get("Hostname") or container_id[:12])
    dns_args = {
        "dns": list(host_config.get("Dns") or []),
        "add_hosts": list(host_config.get("ExtraHosts") or []),
        "dns_search": list(host_config.get("DnsSearch") or []),
        "dns_options": list(host_config.get("DnsOptions") or []),
    }
    domain = str(config.get("Domainname") or "")
    if p.mode == "container":
        if not joined_namespace:
            raise InvalidNetworkArgument(f"container {p.container} has no network namespace")
        return NetworkSetup(joined_namespace, {}, [])
    if p.mode == "host":
        files = write_container_files(container_dir, hostname, [], host_network=True,
                                      **dns_args)  # type: ignore[arg-type]
        return NetworkSetup("host", files, [])
    teardown(manager, container_id)  # a restart after a crash: start from clean
    ns = create_netns(container_id, NETNS_DIR)  # --network none: this, with only lo

    def attach(in_place: bool = False) -> tuple[list[Attachment], dict[str, str]]:
        try:
            # before the attachments: the first DNS network starts the container's own
            # DNS server when it has --dns servers (see resolver.py); kept for
            # connect/disconnect
            manager.resolvers.configure(container_id, DnsSettings(
                tuple(dns_args["dns"]), tuple(dns_args["dns_search"]),
                tuple(dns_args["dns_options"])))
            attachments = []
            for i, ep in enumerate(p.endpoints):
                attachments.append(manager.attach(
                    container_id, ns, ep.network, aliases=ep.aliases, ip=ep.ip,
                    hostname=hostname, container_name=name,
                    ports=p.ports if i == 0 else ()))
            files = write_container_files(container_dir, hostname, attachments,
                                          domainname=domain, in_place=in_place,
                                          **dns_args)  # type: ignore[arg-type]
        except BaseException:
            teardown(manager, container_id)
            raise
        return attachments, files

    if attach_later and p.endpoints:
        try:
            files = write_container_files(container_dir, hostname, [], domainname=domain,
                                          **dns_args)  # type: ignore[arg-type]
        except BaseException:
            teardown(manager, container_id)
            raise
        return NetworkSetup(str(ns), files, [], attach=lambda: attach(in_place=True)[0])
    attachments, files = attach()
    return NetworkSetup(str(ns), files, attachments)


def teardown(manager: NetworkManager, container_id: str) -> None:
    """Detach the container everywhere and drop its namespace; idempotent.

    The namespace goes first (after the container's own DNS server, the one process of
    ours in it): the kernel then destroys the container's veths with it in the background,
    and the drivers only remove rules, names and leases (a stopped container has no
    process left that could hold the namespace)."""
    manager.forget_resolver(container_id)
    delete_netns(netns_path(container_id))
    manager.release_all(container_id)


def settings(manager: NetworkManager, container_id: str,
             config: dict[str, Any]) -> dict[str, Any]:
    """NetworkSettings for `docker inspect` of the container."""
    ns = netns_path(container_id)
    return network_settings(manager.attachments(container_id),
                            list(config.get("ExposedPorts") or {}),
                            sandbox=str(ns) if ns.exists() else "")
