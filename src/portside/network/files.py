"""The files a container sees for names: /etc/hosts, /etc/resolv.conf, /etc/hostname.

Written as Docker writes them, into the container's directory; the engine bind-mounts
them. On user-defined networks the nameserver is the network's DNS (the root's dnsmasq on
the gateway address), which answers container names and aliases and forwards other names
to the host's resolvers; with `--dns` it is 127.0.0.11, as in Docker: the container's own
dnsmasq (resolver.py), which answers the names of its networks and forwards other names to
the `--dns` servers. On the default bridge, as in Docker, the container uses the host's
resolvers (or `--dns`) directly.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from portside.network.errors import InvalidNetworkArgument
from portside.network.resolver import RESOLVER_ADDRESS
from portside.network.store import Attachment

HOST_RESOLV = Path("/etc/resolv.conf")
HOST_HOSTS = Path("/etc/hosts")
FALLBACK_DNS = ("8.8.8.8", "8.8.4.4")  # Docker's, when the host only has loopback resolvers

_HOSTS_HEADER = """127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
"""


def parse_add_host(spec: str) -> tuple[str, str]:
    """`--add-host name:ip` (or `name=ip`; ip may be "host-gateway")."""
    sep = "=" if "=" in spec else ":"
    name, _, ip = spec.partition(sep)
    name, ip = name.strip(), ip.strip().strip("[]")
    if not name or not ip:
        raise InvalidNetworkArgument(f"invalid --add-host {spec!r}: use name:ip")
    if ip != "host-gateway":
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise InvalidNetworkArgument(f"invalid IP {ip!r} in --add-host {spec!r}") from None
    return name, ip


def read_host_resolv(path: Path | None = None) -> tuple[list[str], list[str], list[str]]:
    """(nameservers, search domains, options) of the host's resolv.conf."""
    path = path or HOST_RESOLV
    servers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    try:
        text = path.read_text()
    except OSError:
        return servers, search, options
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            servers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            search = fields[1:]
        elif fields[0] == "options":
            options.extend(fields[1:])
    return servers, search, options


def upstream_servers(dns: Sequence[str] = (), path: Path | None = None) -> list[str]:
    """The resolvers a container on the default bridge uses: `--dns`, else the host's
    non-loopback ones (a loopback resolver is unreachable from the container's namespace)."""
    if dns:
        return list(dns)
    servers = [s for s in read_host_resolv(path)[0]
               if not ipaddress.ip_address(s.split("%")[0]).is_loopback]
    return servers or list(FALLBACK_DNS)


def resolv_conf(attachments: Sequence[Attachment], dns: Sequence[str] = (),
                dns_search: Sequence[str] = (), dns_options: Sequence[str] = (),
                host_resolv: Path | None = None) -> str:
    _, host_search, host_options = read_host_resolv(host_resolv)
    own = [s for a in attachments if not _default_like(a) for s in (a.dns_servers or [a.gateway])]
    if own:
        # user-defined networks: the network's DNS (container names; other names forwarded
        # to the host's resolvers), or with --dns the container's own server on Docker's
        # address (its networks' names; other names forwarded to the --dns servers)
        servers = [RESOLVER_ADDRESS] if dns else list(dict.fromkeys(own))
        options = list(dns_options) or ["ndots:0", *[o for o in host_options
                                                    if not o.startswith("ndots")]]
    else:
        servers = upstream_servers(dns, host_resolv)
        options = list(dns_options) or host_options
    search = list(dns_search) or host_search
    lines = [f"nameserver {s}" for s in servers]
    if search and search != ["."]:
        lines.append("search " + " ".join(search))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def _default_like(att: Attachment) -> bool:
    """An endpoint without a network DNS server (the default bridge)."""
    return not att.dns_servers


def hosts_file(hostname: str, attachments: Sequence[Attachment],
               add_hosts: Iterable[str] = (), domainname: str = "") -> str:
    lines = [_HOSTS_HEADER.rstrip("\n")]
    gateway = attachments[0].gateway if attachments else ""
    for spec in add_hosts:
        name, ip = parse_add_host(spec)
        if ip == "host-gateway":
            if not gateway:
                raise InvalidNetworkArgument(f"--add-host {spec!r}: no network gateway here")
            ip = gateway
        lines.append(f"{ip}\t{name}")
    if attachments and hostname:
        names = f"{hostname}.{domainname} {hostname}" if domainname else hostname
        lines.append(f"{attachments[0].ip}\t{names}")
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str, in_place: bool = False) -> None:
    """Atomically by a rename; `in_place` keeps the inode (the file is bind-mounted into a
    container that does not run yet, so nobody reads it half-written)."""
    if in_place and path.exists():
        with open(path, "r+") as f:
            f.truncate(0)
            f.write(text)
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def write_container_files(directory: str | Path, hostname: str,
                          attachments: Sequence[Attachment], dns: Sequence[str] = (),
                          add_hosts: Iterable[str] = (), *, dns_search: Sequence[str] = (),
                          dns_options: Sequence[str] = (), domainname: str = "",
                          host_network: bool = False, in_place: bool = False
                          ) -> dict[str, str]:
    """Write hosts, resolv.conf and hostname under `directory`; returns
    {container path: host path} for the engine's bind mounts.

    With `host_network`, the container shares the host's stack and gets the host's
    /etc/hosts and /etc/resolv.conf (plus `--add-host` lines), as in Docker.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    if host_network:
        try:
            base = HOST_HOSTS.read_text()
        except OSError:
            base = _HOSTS_HEADER
        extra = hosts_file("", [], add_hosts).split(_HOSTS_HEADER, 1)[-1]
        hosts = base.rstrip("\n") + "\n" + extra if extra.strip() else base
        try:
            resolv = HOST_RESOLV.read_text()
        except OSError:
            resolv = resolv_conf([], dns, dns_search, dns_options)
        if dns or dns_search or dns_options:
            resolv = resolv_conf([], dns, dns_search, dns_options)
    else:
        hosts = hosts_file(hostname, attachments, add_hosts, domainname)
        resolv = resolv_conf(attachments, dns, dns_search, dns_options)
    _write(d / "hosts", hosts, in_place)
    _write(d / "resolv.conf", resolv, in_place)
    _write(d / "hostname", hostname + "\n", in_place)
    return {"/etc/hosts": str(d / "hosts"), "/etc/resolv.conf": str(d / "resolv.conf"),
            "/etc/hostname": str(d / "hostname")}
