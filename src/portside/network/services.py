"""The kernel service balancer of one root: `ServiceBalancer` over nftables and dnsmasq.

Each `apply` records the endpoint (leasing a VIP per network from that network's IPAM,
servicestore.py), then makes three things match the records, under the root's network
lock:

- the services' nftables table (lbtable.py): a change of backends or health rewrites only
  the balancing slots that change; anything else reloads the table, atomically;
- the VIPs as /32 addresses on one link of the root (`psv<tag>`, an empty bridge: this
  kernel has no dummy links): the host then owns them, so it answers a container's ARP for
  its VIP on the network's bridge and the packet reaches the nat hooks (an address on
  that bridge itself would make the CNI bridge plugin refuse the next container: it
  allows one IPv4 address there);
- the names the root's dnsmasq answers (dns.py): `<name>` and aliases -> the VIP (dnsrr:
  the healthy tasks), `tasks.<name>` -> every task, on each of the service's networks.

A task calling its own service goes out to the bridge and back (the firewall's hairpin
masquerade of DNATed in-subnet traffic brings the reply back through the host).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import subprocess
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from portside.network import lbtable
from portside.network.balancer import ServiceEndpoint
from portside.network.errors import InvalidNetworkArgument, NetworkSetupFailed, PortInUse
from portside.network.ports import host_port_free
from portside.network.servicestore import ServiceRecord, ServiceStore

if TYPE_CHECKING:
    from portside.network.manager import NetworkManager

MODES = ("vip", "dnsrr")
PROTOCOLS = ("tcp", "udp")
PUBLISH_MODES = ("ingress", "host")


def validate(ep: ServiceEndpoint) -> None:
    """One line for what a caller got wrong; nothing is recorded then."""
    where = f"service {ep.name or ep.service_id}"
    if not ep.service_id:
        raise InvalidNetworkArgument(f"{where}: empty service ID")
    if ep.mode not in MODES:
        raise InvalidNetworkArgument(f"{where}: endpoint mode {ep.mode!r}: use vip or dnsrr")
    if ep.mode == "dnsrr" and any(p.published for p in ep.ports):
        # Docker's rule: published ports need the VIP's load balancer
        raise InvalidNetworkArgument(f"{where}: port publishing needs endpoint mode vip")
    seen: set[tuple[str, int]] = set()
    for p in ep.ports:
        if p.protocol not in PROTOCOLS:
            raise InvalidNetworkArgument(f"{where}: protocol {p.protocol!r}: use tcp or udp")
        if p.mode not in PUBLISH_MODES:
            raise InvalidNetworkArgument(f"{where}: publish mode {p.mode!r}: use ingress or host")
        for port in (p.target, p.published):
            if port is not None and not 1 <= port <= 65535:
                raise InvalidNetworkArgument(f"{where}: port {port} out of range 1-65535")
        if p.published and (p.protocol, p.published) in seen:
            raise InvalidNetworkArgument(
                f"{where}: port {p.published}/{p.protocol} is published twice")
        if p.published:
            seen.add((p.protocol, p.published))
    for b in ep.backends:
        try:
            ipaddress.IPv4Address(b.address)
        except ValueError:
            raise InvalidNetworkArgument(
                f"{where}: backend {b.task_id} has an invalid address {b.address!r}") from None


def _shape(rec: ServiceRecord) -> tuple[object, ...]:
    """What the table holds of a service besides its slots."""
    ep = rec.endpoint
    return (ep.mode, tuple(ep.networks), tuple(ep.ports), tuple(sorted(rec.vips.items())))


def dns_lines(records: Sequence[ServiceRecord], dns_networks: set[str]) -> list[str]:
    """Hosts-file lines for the services' names on networks with DNS (the root's dnsmasq
    answers a name with the addresses on the network the query came from)."""
    lines: list[str] = []
    for rec in records:
        ep = rec.endpoint
        names = " ".join(dict.fromkeys([ep.name, *ep.aliases]))
        for nid in ep.networks:
            if nid not in dns_networks:
                continue
            tasks = [b for b in ep.backends if b.network == nid]
            if ep.mode == "vip" and nid in rec.vips:
                lines.append(f"{rec.vips[nid]}\t{names}")
            elif ep.mode == "dnsrr":
                lines += [f"{b.address}\t{names}" for b in tasks if b.healthy]
            lines += [f"{b.address}\ttasks.{ep.name}" for b in tasks]
    return lines


class KernelBalancer:
    """`ServiceBalancer` for the root of `manager` (see the module docstring)."""

    def __init__(self, manager: NetworkManager) -> None:
        self.manager = manager
        self.store = ServiceStore(manager.store.backend)
        tag = manager.bridge_prefix[2:]
        self.table = lbtable.table_name(tag)
        self.link = f"psv{tag}"

    def apply(self, endpoint: ServiceEndpoint) -> dict[str, str]:
        validate(endpoint)
        m = self.manager
        with m.locked():
            nets = [m.get(n) for n in endpoint.networks]
            ids = {n.name: n.id for n in nets} | {n.id: n.id for n in nets}
            endpoint = replace(
                endpoint, networks=tuple(dict.fromkeys(n.id for n in nets)),
                backends=tuple(replace(b, network=ids.get(b.network, b.network))
                               for b in endpoint.backends))
            self._check_ports(endpoint)
            old = self.store.get(endpoint.service_id)
            rec = ServiceRecord(endpoint)
            if endpoint.mode == "vip":
                rec.slots = {nid: lbtable.assign(
                    old.slots.get(nid, []) if old else [],
                    [b.address for b in endpoint.backends if b.network == nid and b.healthy])
                    for nid in endpoint.networks}
            rec = self.store.save(rec, nets)
            try:
                self._kernel(old, rec)
            except NetworkSetupFailed:
                if old is None:  # nothing half-made: the record and its VIPs go again
                    self.store.delete(endpoint.service_id)
                self._reload()
                raise
            self._route_localnet(rec)
            m.sync_dns()
        return dict(rec.vips)

    def remove(self, service_id: str) -> None:
        with self.manager.locked():
            if self.store.delete(service_id) is None:
                return
            self._reload()
            self.manager.sync_dns()

    def restore(self) -> None:
        with self.manager.locked():
            self._reload()
            for rec in self.store.all():
                self._route_localnet(rec)
            self.manager.sync_dns()

    def _route_localnet(self, rec: ServiceRecord) -> None:
        """127.0.0.1:<published> -> a backend: the kernel must route a loopback source out
        of the bridge the published ports lead to (as the CNI driver does for containers)."""
        ep = rec.endpoint
        if ep.mode == "vip" and ep.networks and any(p.published for p in ep.ports):
            bridge = self.manager.store.get_network(ep.networks[0]).bridge
            with contextlib.suppress(OSError):
                Path(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet").write_text("1")

    def dns_lines(self) -> list[str]:
        """The services' hosts-file lines for the root's dnsmasq."""
        with_dns = {n.id for n in self.manager.store.networks() if n.dns_enabled}
        return dns_lines(self.store.all(), with_dns)

    def users(self, network_id: str) -> list[str]:
        """The services on a network (which keep it from being removed)."""
        return [f"service {r.endpoint.name}" for r in self.store.all()
                if network_id in r.endpoint.networks]

    def vips(self, service_id: str) -> dict[str, str]:
        rec = self.store.get(service_id)
        return dict(rec.vips) if rec else {}

    def _check_ports(self, ep: ServiceEndpoint) -> None:
        """A published port must be free: not another service's, not a container's, not a
        host process's (on first publication)."""
        mine = self.store.get(ep.service_id)
        had = {(p.protocol, p.published) for p in mine.endpoint.ports} if mine else set()
        others = {(p.protocol, p.published): r.endpoint.name for r in self.store.all()
                  if r.endpoint.service_id != ep.service_id for p in r.endpoint.ports
                  if p.published}
        containers = {(proto, port): cid for _, port, proto, cid
                      in self.manager.store.used_ports()}
        for p in ep.ports:
            key = (p.protocol, p.published)
            if not p.published or key in had and key not in others:
                continue
            if key in others:
                raise PortInUse("", p.published, p.protocol, f"service {others[key]}")
            if key in containers:
                raise PortInUse("", p.published, p.protocol,
                                f"container {containers[key][:12]}")
            if not host_port_free("", p.published, p.protocol):
                raise PortInUse("", p.published, p.protocol, "a host process holds it")

    def _kernel(self, old: ServiceRecord | None, rec: ServiceRecord) -> None:
        if rec.endpoint.mode != "vip":
            if old is not None and old.endpoint.mode == "vip":
                self._reload()
            return
        if old is not None and _shape(old) == _shape(rec):
            try:
                lbtable.update_slots(self.table, rec.endpoint.service_id,
                                     {nid: (old.slots.get(nid, []), rec.slots[nid])
                                      for nid in rec.endpoint.networks})
                return
            except NetworkSetupFailed:
                pass  # the table is not what we left (flushed by hand?): reload it
        self._reload()

    def _reload(self) -> None:
        """The table and the VIP addresses made to match every record."""
        records = self.store.all()
        self._sync_addresses({ip for r in records for ip in r.vips.values()})
        lbtable.load(self.table, records)

    def _sync_addresses(self, wanted: set[str]) -> None:
        have = _link_addresses(self.link)
        if have is None and not wanted:
            return
        if not wanted:
            _ip("link", "del", self.link)
            return
        if have is None:
            _ip("link", "add", self.link, "type", "bridge")
            _ip("link", "set", self.link, "up")
            have = set()
        for ip in sorted(wanted - have):
            _ip("addr", "add", f"{ip}/32", "dev", self.link)
        for ip in sorted(have - wanted):
            _ip("addr", "del", f"{ip}/32", "dev", self.link)

    def purge(self) -> None:
        """Forget every service of the root, leaving nothing in the kernel."""
        with self.manager.locked():
            for rec in self.store.all():
                self.store.delete(rec.endpoint.service_id)
            self._reload()
            self.manager.sync_dns()


def _link_addresses(link: str) -> set[str] | None:
    """The IPv4 addresses of `link`; None when there is no such link."""
    res = subprocess.run(["ip", "-j", "-4", "addr", "show", "dev", link], capture_output=True,
                         text=True, check=False)
    if res.returncode != 0:
        return None
    return {a["local"] for entry in json.loads(res.stdout or "[]")
            for a in entry.get("addr_info", [])}


def _ip(*args: str) -> None:
    res = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise NetworkSetupFailed(f"ip {args[0]} {args[1]} for", "services", res.stderr)
