"""NAT, published ports and isolation as one nftables table per portside root.

The whole table is rebuilt from the store after every change and loaded in one atomic
`nft -f` transaction, so it always matches the endpoints that exist, and the last
endpoint's removal deletes the table: nothing stays behind. Rules, per network with
endpoints:

- outbound NAT: `ip saddr <subnet> oifname != <bridge> masquerade` (not for internal ones);
- published ports: `fib daddr type local` DNAT in prerouting (other hosts) and output
  (this host, 127.0.0.1 and its own addresses), with masquerade of loopback sources
  (the bridge has route_localnet) and of hairpin traffic (a container to its own port);
- isolation: nothing forwarded from one of our bridges to another (Docker's isolation
  chains), and nothing into or out of an internal network's bridge.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from portside.network.errors import NetworkSetupFailed
from portside.network.store import Attachment, Network


def table_name(tag: str) -> str:
    return f"portside_{tag}"


def ruleset(table: str, networks: Sequence[Network],
            endpoints: Sequence[Attachment]) -> str:
    """The table's text for these networks (only those with endpoints get rules)."""
    active = [n for n in networks if any(a.network_id == n.id for a in endpoints)]
    ports = [(a, p) for a in endpoints for p in a.ports]
    bridges = ", ".join(f'"{n.bridge}"' for n in active)
    lines = [f"table ip {table} {{"]
    lines.append("  chain ports {")
    for a, p in ports:
        dest = f"ip daddr {p.host_ip} " if p.host_ip else ""
        lines.append(f"    {dest}{p.proto} dport {p.host_port} dnat to {a.ip}:{p.container_port}")
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
    if ports:
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


def apply(table: str, networks: Sequence[Network], endpoints: Sequence[Attachment]) -> None:
    """Replace the table atomically; without endpoints, remove it."""
    script = f"table ip {table}\ndelete table ip {table}\n"
    if endpoints:
        script += ruleset(table, networks, endpoints)
    res = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True)
    if res.returncode != 0:
        raise NetworkSetupFailed("apply firewall rules for", "portside", res.stderr)


def remove(table: str) -> None:
    subprocess.run(["nft", "delete", "table", "ip", table], capture_output=True, check=False)
