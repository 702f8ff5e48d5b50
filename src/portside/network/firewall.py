"""NAT, published ports and isolation as one nftables table per portside root.

The table is built from the store and loaded in one atomic `nft -f` transaction, so it
always matches the endpoints that exist. Rules, per network whose bridge exists (bridges
stay while their network does, until the daemon stops; then the table goes with the last
of them, and nothing stays behind):

- outbound NAT: `ip saddr <subnet> oifname != <bridge> masquerade` (not for internal ones);
- published ports: `fib daddr type local` DNAT in prerouting (other hosts) and output
  (this host, 127.0.0.1 and its own addresses) through maps from the host port (and
  address, when one is given) to the container's address and port, with masquerade of
  loopback sources (the bridge has route_localnet) and of hairpin traffic (a container to
  its own port);
- isolation: nothing forwarded from one of our bridges to another (Docker's isolation
  chains), and nothing into or out of an internal network's bridge.

Everything but the maps' elements depends only on which bridges exist: the table's
`shape`. While the shape stays the same, a container coming or going changes
map elements only (`update_ports`), or nothing when it publishes no port. That matters:
every nftables transaction that deletes something waits for an RCU grace period in the
kernel (10-15 ms here), so rebuilding the table cost ~13 ms at every attach and detach;
adding elements costs ~4 ms, and a container without published ports costs nothing.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from portside.network.errors import NetworkSetupFailed
from portside.network.ports import PROTOCOLS, PortMapping
from portside.network.store import Attachment, Network


def table_name(tag: str) -> str:
    return f"portside_{tag}"


def _maps(endpoints: Sequence[Attachment]) -> dict[str, list[str]]:
    """Elements of the port maps: `<proto>_any` (host port) and `<proto>_ip` (host address
    and port), each to the container's address and port."""
    maps: dict[str, list[str]] = {f"{proto}_{kind}": [] for proto in PROTOCOLS
                                  for kind in ("any", "ip")}
    for a in endpoints:
        for p in a.ports:
            name, key = _element_key(p)
            maps[name].append(f"{key} : {a.ip} . {p.container_port}")
    return maps


def _element_key(p: PortMapping) -> tuple[str, str]:
    if p.host_ip:
        return f"{p.proto}_ip", f"{p.host_ip} . {p.host_port}"
    return f"{p.proto}_any", str(p.host_port)


def ruleset(table: str, active: Sequence[Network], endpoints: Sequence[Attachment],
            elements: bool = True) -> str:
    """The table's text for these networks (those whose bridge exists) and endpoints;
    without `elements`, its shape: the same text with empty port maps."""
    bridges = ", ".join(f'"{n.bridge}"' for n in active)
    lines = [f"table ip {table} {{"]
    for name, items in _maps(endpoints).items():
        key = "inet_service" if name.endswith("_any") else "ipv4_addr . inet_service"
        lines.append(f"  map {name} {{")
        lines.append(f"    type {key} : ipv4_addr . inet_service")
        if elements and items:
            lines.append(f"    elements = {{ {', '.join(items)} }}")
        lines.append("  }")
    lines.append("  chain ports {")
    for proto in PROTOCOLS:
        lines.append(f"    dnat ip to ip daddr . {proto} dport map @{proto}_ip")
        lines.append(f"    dnat ip to {proto} dport map @{proto}_any")
    lines.append("  }")
    lines.append("  chain prerouting {")
    lines.append("    type nat hook prerouting priority dstnat; policy accept;")
    lines.append("    fib daddr type local jump ports")
    lines.append("  }")
    lines.append("  chain output {")
    lines.append("    type nat hook output priority -100; policy accept;")
    lines.append("    fib daddr type local jump ports")
    lines.append("  }")
    lines.append("  chain postrouting {")
    lines.append("    type nat hook postrouting priority srcnat; policy accept;")
    lines.append("    ip saddr 127.0.0.0/8 ct status dnat masquerade")
    for n in active:
        lines.append(f"    ip saddr {n.subnet} ip daddr {n.subnet} ct status dnat masquerade")
        if not n.internal:
            lines.append(f'    ip saddr {n.subnet} oifname != "{n.bridge}" masquerade')
    lines.append("  }")
    lines.append("  chain forward {")
    lines.append("    type filter hook forward priority filter - 10; policy accept;")
    for n in active:
        if n.internal:
            lines.append(f'    iifname "{n.bridge}" oifname != "{n.bridge}" drop')
            lines.append(f'    oifname "{n.bridge}" iifname != "{n.bridge}" drop')
        elif len(active) > 1:
            lines.append(f'    iifname "{n.bridge}" oifname {{ {bridges} }} '
                         f'oifname != "{n.bridge}" drop')
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def shape(table: str, active: Sequence[Network], endpoints: Sequence[Attachment]) -> str:
    """What a change must keep for `update_ports` to do: "" when there is no table."""
    return ruleset(table, active, endpoints, elements=False) if active else ""


def apply(table: str, active: Sequence[Network], endpoints: Sequence[Attachment]) -> None:
    """Replace the table atomically; without networks, remove it."""
    script = f"table ip {table}\ndelete table ip {table}\n"
    if active:
        script += ruleset(table, active, endpoints)
    nft(script)


def update_ports(table: str, added: Sequence[Attachment] = (),
                 removed: Sequence[Attachment] = ()) -> None:
    """Add the published ports of `added` to the maps and drop those of `removed`, in one
    transaction (the table must have the same shape as before)."""
    lines = [f"delete element ip {table} {name} {{ {key} }}"
             for a in removed for name, key in map(_element_key, a.ports)]
    lines += [f"add element ip {table} {name} {{ {item} }}"
              for name, items in _maps(added).items() for item in items]
    if lines:
        nft("\n".join(lines) + "\n")


def nft(script: str, what: str = "firewall rules") -> None:
    """Load `script` in one `nft -f` transaction; NetworkSetupFailed names `what`."""
    res = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True)
    if res.returncode != 0:
        raise NetworkSetupFailed(f"apply {what} for", "portside", res.stderr)


def remove(table: str) -> None:
    subprocess.run(["nft", "delete", "table", "ip", table], capture_output=True, check=False)
