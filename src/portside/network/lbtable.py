"""The services' nftables table: VIPs and published ports balanced over healthy backends.

kube-proxy's nftables mode is the model, with one change so that a change of backends is
elements only. One table per portside root, beside the firewall's (firewall.py):

- `vips` (VIP . protocol . port -> `goto` a port chain) and `published` (protocol .
  host port -> `goto`), looked up in `prerouting` (other hosts, containers) and `output`
  (this host), at a priority before the firewall's, so a service's DNAT comes first;
- one port chain per service, network and port: `dnat ip to numgen random mod 256 map
  @<slots> : <target port>`;
- one slot map per service and network: 256 slots, each holding a healthy backend's
  address (`assign` spreads them evenly, at most one slot apart, and keeps a staying
  backend's slots). No healthy backend: no element, so the rule does not match and a
  connection to the VIP is refused by the host.

A service coming or going (or changing its ports or networks) reloads the table in one
`nft -f` transaction; a backend coming, going or changing health rewrites only the slots
that change, also in one transaction. Neither touches conntrack, so established
connections keep their backend; a new connection only ever picks a slot's current backend.
Published ports are DNATed without masquerade, so a backend sees an outside client's own
address (the firewall's postrouting masquerades only container and loopback sources).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from portside.network.firewall import nft
from portside.network.servicestore import ServiceRecord

SLOTS = 256


def table_name(tag: str) -> str:
    return f"portside_{tag}_svc"


def assign(old: Sequence[str], healthy: Sequence[str]) -> list[str]:
    """The slot table for `healthy` backends: each gets SLOTS/n slots (the first ones in
    sorted order one more), keeping as many of the slots it had in `old` as it may."""
    backends = sorted(set(healthy))
    if not backends:
        return [""] * SLOTS
    base, extra = divmod(SLOTS, len(backends))
    quota = {a: base + (1 if i < extra else 0) for i, a in enumerate(backends)}
    new = [""] * SLOTS
    count = dict.fromkeys(backends, 0)
    for i, a in enumerate(list(old)[:SLOTS]):
        if a in quota and count[a] < quota[a]:
            new[i] = a
            count[a] += 1
    free = (i for i in range(SLOTS) if not new[i])
    for a in backends:
        for _ in range(quota[a] - count[a]):
            new[next(free)] = a
    return new


def _tag(service_id: str) -> str:
    return hashlib.sha256(service_id.encode()).hexdigest()[:12]


def slot_map(service_id: str, network_id: str) -> str:
    return f"b_{_tag(service_id)}_{network_id[:12]}"


def port_chain(service_id: str, network_id: str, proto: str, target: int) -> str:
    return f"p_{_tag(service_id)}_{network_id[:12]}_{proto}_{target}"


def _elements(slots: Sequence[str]) -> list[str]:
    return [f"{i} : {a}" for i, a in enumerate(slots) if a]


def ruleset(table: str, services: Sequence[ServiceRecord]) -> str:
    """The whole table for these services (VIP mode ones; dnsrr has no kernel part)."""
    vips: list[str] = []
    published: list[str] = []
    body: list[str] = []
    for rec in services:
        ep = rec.endpoint
        if ep.mode != "vip":
            continue
        for nid in ep.networks:
            name = slot_map(ep.service_id, nid)
            body += [f"  map {name} {{", f"    typeof numgen random mod {SLOTS} : ip daddr"]
            items = _elements(rec.slots.get(nid, []))
            if items:
                body.append(f"    elements = {{ {', '.join(items)} }}")
            body.append("  }")
            for p in ep.ports:
                chain = port_chain(ep.service_id, nid, p.protocol, p.target)
                body += [f"  chain {chain} {{",
                         f"    meta l4proto {p.protocol} dnat ip to numgen random mod {SLOTS}"
                         f" map @{name} : {p.target}", "  }"]
                if nid in rec.vips:
                    vips.append(f"{rec.vips[nid]} . {p.protocol} . {p.target} : goto {chain}")
        for p in ep.ports:
            if p.published and ep.networks:
                chain = port_chain(ep.service_id, ep.networks[0], p.protocol, p.target)
                published.append(f"{p.protocol} . {p.published} : goto {chain}")
    lines = [f"table ip {table} {{"]
    for name, key, items in (("vips", "ipv4_addr . inet_proto . inet_service", vips),
                             ("published", "inet_proto . inet_service", published)):
        lines += [f"  map {name} {{", f"    type {key} : verdict"]
        if items:
            lines.append(f"    elements = {{ {', '.join(items)} }}")
        lines.append("  }")
    lines += body
    lookups = ["    ip daddr . meta l4proto . th dport vmap @vips",
               "    fib daddr type local meta l4proto . th dport vmap @published"]
    lines += ["  chain prerouting {",
              "    type nat hook prerouting priority dstnat - 10; policy accept;", *lookups,
              "  }", "  chain output {",
              "    type nat hook output priority -110; policy accept;", *lookups, "  }", "}"]
    return "\n".join(lines) + "\n"


def load(table: str, services: Sequence[ServiceRecord]) -> None:
    """Replace the table atomically; without services, remove it."""
    script = f"table ip {table}\ndelete table ip {table}\n"
    if any(r.endpoint.mode == "vip" for r in services):
        script += ruleset(table, services)
    nft(script, "service rules")


def update_slots(table: str, service_id: str, changes: dict[str, tuple[list[str], list[str]]]
                 ) -> None:
    """Rewrite the slots that differ (network ID -> (old, new) slot tables), in one
    transaction; a slot moving from one backend to another is deleted and added in it."""
    lines: list[str] = []
    for nid, (old, new) in changes.items():
        name = slot_map(service_id, nid)
        old = list(old) + [""] * (SLOTS - len(old))
        moved = [(i, was, now) for i, (was, now) in enumerate(zip(old, new, strict=True))
                 if was != now]
        # one statement per kind: nft parses a statement per element slowly (~0.15 ms)
        gone = [str(i) for i, was, _ in moved if was]
        came = [f"{i} : {now}" for i, _, now in moved if now]
        if gone:
            lines.append(f"delete element ip {table} {name} {{ {', '.join(gone)} }}")
        if came:
            lines.append(f"add element ip {table} {name} {{ {', '.join(came)} }}")
    if lines:
        nft("\n".join(lines) + "\n", "service rules")


