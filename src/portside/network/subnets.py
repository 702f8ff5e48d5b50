"""Subnets: parsing, what the host already routes, and picking a free one.

A new network must not overlap the host's own addresses and routes (or the traffic to
them would go into the bridge) nor any other network of the store.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from collections.abc import Iterable, Iterator

from portside.network.errors import InvalidNetworkArgument, SubnetOverlap

Net = ipaddress.IPv4Network

# Docker's default address pools: the default bridge takes a /16 of 172.17-31, user networks
# take /24s of 10.89.0.0/16 (podman's pool, left of its 10.88.0.0/16 default network).
DEFAULT_BRIDGE_POOL = [f"172.{n}.0.0/16" for n in range(17, 32)]
USER_POOL = ("10.89.0.0/16", 24)


def parse_subnet(text: str) -> Net:
    """Parse an IPv4 CIDR; host bits must be zero and at least two hosts must fit."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise InvalidNetworkArgument(f"invalid subnet {text!r}: {exc}") from None
    if net.version != 4:
        raise InvalidNetworkArgument(f"IPv6 subnet {text!r} is not supported")
    if net.prefixlen > 30:
        raise InvalidNetworkArgument(f"subnet {text!r} is too small: use /30 or larger")
    return net


def parse_gateway(text: str, subnet: Net) -> ipaddress.IPv4Address:
    """A gateway must be a host address of its subnet."""
    try:
        gw = ipaddress.IPv4Address(text.strip())
    except ValueError:
        raise InvalidNetworkArgument(f"invalid gateway {text!r}") from None
    if gw not in subnet or gw in (subnet.network_address, subnet.broadcast_address):
        raise InvalidNetworkArgument(f"gateway {gw} is not a host address of subnet {subnet}")
    return gw


def parse_address(text: str, subnet: Net, network: str) -> ipaddress.IPv4Address:
    """A fixed container address (`--ip`) must be a host address of the network's subnet."""
    try:
        ip = ipaddress.IPv4Address(text.strip())
    except ValueError:
        raise InvalidNetworkArgument(f"invalid IP address {text!r}") from None
    if ip not in subnet or ip in (subnet.network_address, subnet.broadcast_address):
        raise InvalidNetworkArgument(
            f"address {ip} is not in subnet {subnet} of network {network}")
    return ip


def host_networks() -> list[tuple[Net, str]]:
    """The IPv4 networks the host has addresses on or routes to (not the default route)."""
    out: list[tuple[Net, str]] = []
    addrs = json.loads(_ip("-4", "addr", "show") or "[]")
    for link in addrs:
        for a in link.get("addr_info", []):
            if a.get("family") == "inet" and link.get("ifname") != "lo":
                net = ipaddress.IPv4Interface(f"{a['local']}/{a['prefixlen']}").network
                out.append((net, f"host interface {link.get('ifname')}"))
    routes = json.loads(_ip("-4", "route", "show", "table", "all") or "[]")
    for r in routes:
        dst = r.get("dst", "default")
        if dst == "default" or r.get("type") in ("local", "broadcast", "multicast"):
            continue
        try:
            route = Net(dst, strict=False)
        except ValueError:
            continue
        if not route.is_loopback:
            out.append((route, f"host route {dst} dev {r.get('dev', '?')}"))
    return out


def _ip(*args: str) -> str:
    res = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=False)
    return res.stdout.strip()


def check_overlap(subnet: Net, taken: Iterable[tuple[Net, str]]) -> None:
    """Raise SubnetOverlap naming the first thing `subnet` overlaps."""
    for net, what in taken:
        if subnet.overlaps(net):
            raise SubnetOverlap(str(subnet), what)


def candidates(pool: str | list[str], prefix: int | None = None) -> Iterator[Net]:
    if isinstance(pool, list):
        for text in pool:
            yield parse_subnet(text)
        return
    base = parse_subnet(pool)
    yield from base.subnets(new_prefix=prefix or base.prefixlen)


def pick_subnet(pool: Iterable[Net], taken: list[tuple[Net, str]]) -> Net:
    """The first subnet of `pool` that overlaps nothing taken."""
    for net in pool:
        if not any(net.overlaps(t) for t, _ in taken):
            return net
    raise SubnetOverlap("pool", "every candidate subnet is in use; give --subnet")
