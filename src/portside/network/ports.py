"""Published ports: Docker's `-p` syntax, `-P` from EXPOSE, and finding free host ports.

A `PortMapping` is one container port published on one host port (or on any free port
in `host_port..host_port_end`, or on any free port at all when `host_port` is 0). The
kernel forwards the traffic (netavark's DNAT rules); nothing here is on the data path.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from portside.network.errors import InvalidNetworkArgument

PROTOCOLS = ("tcp", "udp", "sctp")
_PORT_RANGE = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?$")


@dataclass(frozen=True)
class PortMapping:
    """One published port; `host_ip` "" means every host address (0.0.0.0)."""

    host_ip: str
    host_port: int
    container_port: int
    proto: str = "tcp"
    host_port_end: int = 0  # with host_port: pick a free port in this inclusive range

    def __str__(self) -> str:
        host = f"{self.host_ip or '0.0.0.0'}:{self.host_port}"
        if self.host_port_end:
            host += f"-{self.host_port_end}"
        return f"{host}->{self.container_port}/{self.proto}"

    def docker_key(self) -> str:
        """The key of this port in Docker's `Ports` maps: "80/tcp"."""
        return f"{self.container_port}/{self.proto}"


def _range(text: str, spec: str, *, allow_zero: bool = False) -> tuple[int, int]:
    m = _PORT_RANGE.match(text)
    if not m:
        raise InvalidNetworkArgument(f"invalid port {text!r} in port spec {spec!r}")
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) else lo
    low_bound = 0 if allow_zero and lo == hi == 0 else 1
    if not (low_bound <= lo <= 65535 and low_bound <= hi <= 65535):
        raise InvalidNetworkArgument(f"port {text!r} out of range 1-65535 in port spec {spec!r}")
    if hi < lo:
        raise InvalidNetworkArgument(f"invalid port range {text!r} in port spec {spec!r}")
    return lo, hi


def _host_ip(text: str, spec: str) -> str:
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if text == "":
        return ""
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidNetworkArgument(f"invalid host IP {text!r} in port spec {spec!r}") from None
    if addr.version == 6:
        raise InvalidNetworkArgument(f"IPv6 host IP {text!r} is not supported (port spec {spec!r})")
    return "" if str(addr) == "0.0.0.0" else str(addr)


def parse_publish(spec: str) -> list[PortMapping]:
    """Parse one `-p` value: `[ip:][hostPort[-end]:]containerPort[-end][/proto]`."""
    text = spec.strip()
    if not text:
        raise InvalidNetworkArgument("empty port spec")
    proto = "tcp"
    if "/" in text:
        text, proto = text.rsplit("/", 1)
        proto = proto.lower()
        if proto not in PROTOCOLS:
            raise InvalidNetworkArgument(f"invalid protocol {proto!r} in port spec {spec!r}")
    host_ip, host_part = "", ""
    if text.startswith("["):  # [v6]:host:container
        end = text.find("]")
        if end < 0:
            raise InvalidNetworkArgument(f"invalid host IP in port spec {spec!r}")
        host_ip, rest = text[: end + 1], text[end + 1 :]
        if not rest.startswith(":"):
            raise InvalidNetworkArgument(f"invalid port spec {spec!r}")
        parts = rest[1:].split(":")
        if len(parts) != 2:
            raise InvalidNetworkArgument(f"invalid port spec {spec!r}")
        host_part, ctr_part = parts
    else:
        parts = text.split(":")
        if len(parts) == 1:
            ctr_part = parts[0]
        elif len(parts) == 2:
            host_part, ctr_part = parts
        elif len(parts) == 3:
            host_ip, host_part, ctr_part = parts
        else:
            raise InvalidNetworkArgument(f"invalid port spec {spec!r}")
    ip = _host_ip(host_ip, spec)
    c_lo, c_hi = _range(ctr_part, spec)
    if host_part == "":
        return [PortMapping(ip, 0, p, proto) for p in range(c_lo, c_hi + 1)]
    h_lo, h_hi = _range(host_part, spec)
    if c_lo == c_hi and h_hi > h_lo:  # 8000-8010:80: any free port of the host range
        return [PortMapping(ip, h_lo, c_lo, proto, host_port_end=h_hi)]
    if h_hi - h_lo != c_hi - c_lo:
        raise InvalidNetworkArgument(
            f"host and container port ranges differ in length in port spec {spec!r}")
    return [PortMapping(ip, h_lo + i, c_lo + i, proto) for i in range(c_hi - c_lo + 1)]


def parse_publish_all(specs: Iterable[str]) -> list[PortMapping]:
    """Parse several `-p` values, refusing a host port given twice."""
    out: list[PortMapping] = []
    for spec in specs:
        out.extend(parse_publish(spec))
    check_no_duplicates(out)
    return out


def check_no_duplicates(mappings: Iterable[PortMapping]) -> None:
    seen: dict[tuple[int, str], str] = {}
    for m in mappings:
        if not m.host_port or m.host_port_end:
            continue
        key = (m.host_port, m.proto)
        other = seen.get(key)
        if other is not None and (not other or not m.host_ip or other == m.host_ip):
            raise InvalidNetworkArgument(f"host port {m.host_port}/{m.proto} is published twice")
        seen[key] = m.host_ip


def parse_port_key(key: str) -> tuple[int, int, str]:
    """Parse an EXPOSE / ExposedPorts key ("80", "80/udp", "8000-8002/tcp")."""
    text, _, proto = key.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in PROTOCOLS:
        raise InvalidNetworkArgument(f"invalid protocol {proto!r} in exposed port {key!r}")
    lo, hi = _range(text, key)
    return lo, hi, proto


def publish_all(exposed: Iterable[str] | Mapping[str, object]) -> list[PortMapping]:
    """`-P`: every exposed port on a free host port of every address."""
    out: list[PortMapping] = []
    for key in exposed:
        lo, hi, proto = parse_port_key(key)
        out.extend(PortMapping("", 0, p, proto) for p in range(lo, hi + 1))
    return out


def host_port_free(host_ip: str, port: int, proto: str) -> bool:
    """True when no host socket holds `port` on `host_ip` (every address when "")."""
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    if proto == "sctp":
        return True  # the kernel's sctp module may be absent; rely on the mapping table
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind((host_ip or "0.0.0.0", port))
        except OSError:
            return False
    return True


def any_free_port(host_ip: str, proto: str) -> int:
    """A port the kernel says is free now (from its ephemeral range)."""
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host_ip or "0.0.0.0", 0))
        port: int = s.getsockname()[1]
        return port
