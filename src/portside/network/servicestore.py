"""Service endpoints as records in the state backend, with their VIPs leased from IPAM.

Keys: `service-endpoints/<service id>` (what `ServiceBalancer.apply` was last told, the
VIPs it got and the balancer's slot tables) and, for each VIP, the network's own lease key
`ipam/<network id>/<vip>` holding `service:<service id>`. A VIP is leased in the same
transaction that records the service, and only while that key is absent, so a container
and a service (or two services) never get one address, also between processes; it is
released with the record, in one transaction, on `remove`.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from portside.network.balancer import Backend, ServiceEndpoint, ServicePort
from portside.network.store import IPAM, IPAM_LAST, SERVICES, Network, next_free
from portside.state.backend import Compare, Delete, Op, Put, StateBackend

LEASE_PREFIX = "service:"


@dataclass
class ServiceRecord:
    """A service as the balancer keeps it: the endpoint, its VIPs (network ID -> address)
    and, per network, which backend address each balancing slot sends to."""

    endpoint: ServiceEndpoint
    vips: dict[str, str] = field(default_factory=dict)
    slots: dict[str, list[str]] = field(default_factory=dict)


def _doc(rec: ServiceRecord) -> bytes:
    ep = rec.endpoint
    return json.dumps({
        "service_id": ep.service_id, "name": ep.name, "networks": list(ep.networks),
        "mode": ep.mode, "aliases": list(ep.aliases),
        "ports": [asdict(p) for p in ep.ports], "backends": [asdict(b) for b in ep.backends],
        "vips": rec.vips, "slots": rec.slots}).encode()


def _record(value: bytes) -> ServiceRecord:
    d = json.loads(value)
    ep = ServiceEndpoint(
        service_id=d["service_id"], name=d["name"], networks=tuple(d["networks"]),
        mode=d["mode"], aliases=tuple(d["aliases"]),
        ports=tuple(ServicePort(**p) for p in d["ports"]),
        backends=tuple(Backend(**b) for b in d["backends"]))
    return ServiceRecord(ep, dict(d["vips"]), {k: list(v) for k, v in d["slots"].items()})


class ServiceStore:
    """The balancer's records in a `StateBackend` (the network store's)."""

    def __init__(self, backend: StateBackend) -> None:
        self.backend = backend

    def get(self, service_id: str) -> ServiceRecord | None:
        kv = self.backend.get(SERVICES + service_id)
        return _record(kv.value) if kv else None

    def all(self) -> list[ServiceRecord]:
        kvs, _ = self.backend.range(SERVICES)
        return [_record(kv.value) for kv in kvs]

    def save(self, rec: ServiceRecord, networks: Sequence[Network]) -> ServiceRecord:
        """Record `rec`, leasing a VIP on each network of `networks` that has none yet and
        releasing those of networks the service left, in one transaction (retried when an
        address or the record changed under it)."""
        sid = rec.endpoint.service_id
        key = SERVICES + sid
        while True:
            old = self.backend.get(key)
            prev = _record(old.value).vips if old else {}
            vips: dict[str, str] = {}
            compares = [Compare.absent(key) if old is None
                        else Compare.mod_revision_is(key, old.mod_revision)]
            ops: list[Op] = []
            for net in networks:
                if rec.endpoint.mode != "vip":
                    continue
                if net.id in prev:
                    vips[net.id] = prev[net.id]
                    continue
                ip = self._free(net)
                ip_key = f"{IPAM}{net.id}/{ip}"
                compares.append(Compare.absent(ip_key))
                ops += [Put(ip_key, (LEASE_PREFIX + sid).encode()),
                        Put(IPAM_LAST + net.id, ip.encode())]
                vips[net.id] = ip
            for nid, ip in prev.items():
                if nid not in vips:
                    self._release(nid, ip, sid, compares, ops)
            rec.vips = vips
            ops.append(Put(key, _doc(rec)))
            if self.backend.txn(compares, ops).succeeded:
                return rec

    def _free(self, net: Network) -> str:
        leases, _ = self.backend.range(f"{IPAM}{net.id}/")
        used = {kv.key.rpartition("/")[2] for kv in leases} | {net.gateway}
        last = self.backend.get(IPAM_LAST + net.id)
        return next_free(ipaddress.IPv4Network(net.subnet), used,
                          last.value.decode() if last else None, net.name)

    def _release(self, network_id: str, ip: str, sid: str, compares: list[Compare],
                 ops: list[Op]) -> None:
        """Release a VIP lease, never another holder's: only while it is still ours."""
        lease_key = f"{IPAM}{network_id}/{ip}"
        lease = self.backend.get(lease_key)
        if lease is not None and lease.value == (LEASE_PREFIX + sid).encode():
            compares.append(Compare.value_is(lease_key, lease.value))
            ops.append(Delete(lease_key))

    def delete(self, service_id: str) -> ServiceRecord | None:
        """Drop the record and its VIP leases in one transaction; the record it was."""
        key = SERVICES + service_id
        while True:
            kv = self.backend.get(key)
            if kv is None:
                return None
            rec = _record(kv.value)
            compares = [Compare.mod_revision_is(key, kv.mod_revision)]
            ops: list[Op] = [Delete(key)]
            for nid, ip in rec.vips.items():
                self._release(nid, ip, service_id, compares, ops)
            if self.backend.txn(compares, ops).succeeded:
                return rec
