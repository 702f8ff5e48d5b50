"""The network store: networks, address leases, attachments and published ports as records
in the state backend.

Keys: `networks/<id>` (the network) with `network-names/<name>` (its id, so names are
unique); `ipam/<network id>/<ip>` (the container holding the address) and
`ipam-last/<network id>` (the address handed out last); `attachments/<container id>/<network
id>` (the endpoint) and `ports/<container id>/<network id>/<n>` (its published ports, in
order). An address is leased in the transaction that records the attachment, and only if
its `ipam/` key is absent, so no address is handed out twice, also between processes and
across daemon restarts; it is released with its attachment and ports in one transaction.
Leases are handed out round-robin (after the last one given) so an address just released is
not reused at once, which keeps stale ARP and DNS caches harmless.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field

from portside.network.errors import (
    AddressInUse,
    AddressPoolExhausted,
    AlreadyAttached,
    NetworkExists,
    NetworkNotFound,
)
from portside.network.ports import PortMapping
from portside.state.backend import (
    Compare,
    CompareOp,
    Delete,
    Get,
    KeyValue,
    Op,
    Put,
    StateBackend,
    Target,
)

NETWORKS = "networks/"
NETWORK_NAMES = "network-names/"
IPAM = "ipam/"
IPAM_LAST = "ipam-last/"
ATTACHMENTS = "attachments/"
PORTS = "ports/"
SERVICES = "service-endpoints/"  # the service balancer's records (servicestore.py)


@dataclass
class Network:
    id: str
    name: str
    driver: str
    bridge: str
    subnet: str
    gateway: str
    internal: bool
    dns_enabled: bool
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    created: str = ""

    @property
    def prefix(self) -> int:
        return ipaddress.IPv4Network(self.subnet).prefixlen


@dataclass
class Attachment:
    """A container's endpoint on one network, as the engine and `inspect` need it."""

    container_id: str
    network: str
    network_id: str
    ip: str
    prefix: int
    gateway: str
    mac: str = ""
    interface: str = "eth0"
    aliases: list[str] = field(default_factory=list)
    hostname: str = ""
    container_name: str = ""
    netns: str = ""
    ports: list[PortMapping] = field(default_factory=list)
    dns_servers: list[str] = field(default_factory=list)
    internal: bool = False


class NetworkStore:
    """The network records in a `StateBackend` (the engine's, or one the manager opened);
    safe across threads and processes, as the backend is."""

    def __init__(self, backend: StateBackend) -> None:
        self.backend = backend

    def close(self) -> None:
        """Nothing to release: the backend is its opener's to close."""

    # -- networks ---------------------------------------------------------------------

    def add_network(self, net: Network) -> None:
        name_key = NETWORK_NAMES + net.name
        r = self.backend.txn([Compare.absent(name_key), Compare.absent(NETWORKS + net.id)],
                             [Put(NETWORKS + net.id, network_doc(net)),
                              Put(name_key, net.id.encode())])
        if not r.succeeded:
            raise NetworkExists(net.name)

    def remove_network(self, network_id: str) -> None:
        kv = self.backend.get(NETWORKS + network_id)
        if kv is None:
            return
        net = network_from_doc(kv.value)
        self.backend.txn([], [Delete(NETWORKS + net.id), Delete(NETWORK_NAMES + net.name),
                              Delete(IPAM_LAST + net.id)])

    def networks(self) -> list[Network]:
        kvs, _ = self.backend.range(NETWORKS)
        return sorted((network_from_doc(kv.value) for kv in kvs),
                      key=lambda n: (n.created, n.name))

    def find_network(self, ref: str) -> Network | None:
        """By name, full id, or unique id prefix (Docker's lookup order)."""
        if not ref:
            return None
        kv = None
        named = self.backend.get(NETWORK_NAMES + ref)
        if named is not None:
            kv = self.backend.get(NETWORKS + named.value.decode())
        if kv is None:
            kv = self.backend.get(NETWORKS + ref)
        if kv is None and all(c in "0123456789abcdef" for c in ref):
            kvs, _ = self.backend.range(NETWORKS + ref)  # keys sort by id: only matches
            kv = kvs[0] if len(kvs) == 1 else None
        return network_from_doc(kv.value) if kv else None

    def get_network(self, ref: str) -> Network:
        net = self.find_network(ref)
        if net is None:
            raise NetworkNotFound(ref)
        return net

    # -- attachments and leases -------------------------------------------------------

    def reserve(self, att: Attachment, net: Network, fixed_ip: str | None,
                ports: list[PortMapping]) -> Attachment:
        """Lease an address (fixed or next free) and record the attachment and its ports,
        in one transaction that holds only if the address is free, the container is not
        on the network yet and the network exists; a lost race for an address that was
        not asked for tries the next one."""
        subnet = ipaddress.IPv4Network(net.subnet)
        att_key = f"{ATTACHMENTS}{att.container_id}/{net.id}"
        net_key = NETWORKS + net.id
        while True:
            leases, _ = self.backend.range(f"{IPAM}{net.id}/")
            used = {kv.key.rpartition("/")[2] for kv in leases}
            used.add(net.gateway)
            if fixed_ip is not None:
                if fixed_ip in used:
                    raise AddressInUse(fixed_ip, net.name)
                ip = fixed_ip
            else:
                last = self.backend.get(IPAM_LAST + net.id)
                ip = next_free(subnet, used, last.value.decode() if last else None, net.name)
            mine, _ = self.backend.range(f"{ATTACHMENTS}{att.container_id}/")
            seq = max((json.loads(kv.value)["seq"] for kv in mine), default=0) + 1
            ip_key = f"{IPAM}{net.id}/{ip}"
            ops: list[Op] = [Put(ip_key, att.container_id.encode()),
                             Put(att_key, _attachment_doc(att, ip, seq))]
            if fixed_ip is None:
                ops.append(Put(IPAM_LAST + net.id, ip.encode()))
            ops += [Put(f"{PORTS}{att.container_id}/{net.id}/{i:05d}", _port_doc(p))
                    for i, p in enumerate(ports)]
            r = self.backend.txn(
                [Compare.absent(ip_key), Compare.absent(att_key),
                 Compare(net_key, Target.VERSION, CompareOp.GREATER, 0)],
                ops, [Get(att_key), Get(net_key)])
            if r.succeeded:
                break
            if r.responses[0].kvs:
                raise AlreadyAttached(att.container_id, net.name)
            if not r.responses[1].kvs:
                raise NetworkNotFound(net.id)
            # the address went to someone else since the leases were read: read again
        att.ip, att.ports = ip, list(ports)
        return att

    def set_mac(self, container_id: str, network_id: str, mac: str) -> None:
        key = f"{ATTACHMENTS}{container_id}/{network_id}"
        while True:
            kv = self.backend.get(key)
            if kv is None:
                return
            doc = json.loads(kv.value)
            doc["mac"] = mac
            if self.backend.txn([Compare.mod_revision_is(key, kv.mod_revision)],
                                [Put(key, json.dumps(doc).encode())]).succeeded:
                return

    def rename(self, container_id: str, name: str) -> None:
        """A container's new name on every network it is on (what DNS answers): each
        endpoint rewritten if nobody changed it since it was read."""
        while True:
            kvs, _ = self.backend.range(f"{ATTACHMENTS}{container_id}/")
            compares, puts = [], []
            for kv in kvs:
                doc = json.loads(kv.value)
                doc["container_name"] = name
                compares.append(Compare.mod_revision_is(kv.key, kv.mod_revision))
                puts.append(Put(kv.key, json.dumps(doc).encode()))
            if not puts or self.backend.txn(compares, puts).succeeded:
                return

    def release(self, container_id: str, network_id: str) -> None:
        """Drop an attachment with its lease and ports, in one transaction."""
        key = f"{ATTACHMENTS}{container_id}/{network_id}"
        while True:
            kv = self.backend.get(key)
            if kv is None:
                return
            ip_key = f"{IPAM}{network_id}/{json.loads(kv.value)['ip']}"
            ops: list[Op] = [Delete(key), Delete(f"{PORTS}{container_id}/{network_id}/",
                                                 prefix=True)]
            lease = self.backend.get(ip_key)
            if lease is not None and lease.value == container_id.encode():
                ops.append(Delete(ip_key))  # never another holder's lease
            if self.backend.txn([Compare.mod_revision_is(key, kv.mod_revision)],
                                ops).succeeded:
                return

    def attachments(self, *, container_id: str | None = None,
                    network_id: str | None = None) -> list[Attachment]:
        """Attachments, a container's in the order they were made."""
        under = f"{container_id}/" if container_id is not None else ""
        nets = {n.id: n for n in self.networks()}
        kvs, _ = self.backend.range(ATTACHMENTS + under)
        port_kvs, _ = self.backend.range(PORTS + under)
        ports: dict[str, list[PortMapping]] = {}
        for p in port_kvs:  # keys sort by container, network, then position
            ports.setdefault(p.key[len(PORTS):].rpartition("/")[0], []).append(
                _port_from_doc(p.value))
        out: list[tuple[int, Attachment]] = []
        for kv in kvs:
            cid, _, nid = kv.key[len(ATTACHMENTS):].partition("/")
            net = nets.get(nid)
            if net is None or (network_id is not None and nid != network_id):
                continue
            out.append(_attachment(kv, cid, net, ports.get(f"{cid}/{nid}", [])))
        out.sort(key=lambda pair: (pair[1].container_id, pair[0]))
        return [a for _, a in out]

    def used_ports(self) -> list[tuple[str, int, str, str]]:
        """(host_ip, host_port, proto, container_id) of every published port."""
        kvs, _ = self.backend.range(PORTS)
        out = []
        for kv in kvs:
            m = _port_from_doc(kv.value)
            out.append((m.host_ip, m.host_port, m.proto,
                        kv.key[len(PORTS):].partition("/")[0]))
        return out


def next_free(subnet: ipaddress.IPv4Network, used: set[str], last: str | None,
               name: str) -> str:
    first = int(subnet.network_address) + 1
    end = int(subnet.broadcast_address)  # exclusive
    size = end - first
    start = int(ipaddress.IPv4Address(last)) + 1 if last else first
    if not first <= start < end:
        start = first
    for i in range(size):
        cand = str(ipaddress.IPv4Address(first + (start - first + i) % size))
        if cand not in used:
            return cand
    raise AddressPoolExhausted(name, str(subnet))


def network_doc(net: Network) -> bytes:
    """The record of a network as stored under `networks/<id>`."""
    return json.dumps({
        "id": net.id, "name": net.name, "driver": net.driver, "bridge": net.bridge,
        "subnet": net.subnet, "gateway": net.gateway, "internal": net.internal,
        "dns_enabled": net.dns_enabled, "labels": net.labels, "options": net.options,
        "created": net.created}).encode()


def network_from_doc(value: bytes) -> Network:
    d = json.loads(value)
    return Network(id=d["id"], name=d["name"], driver=d["driver"], bridge=d["bridge"],
                   subnet=d["subnet"], gateway=d["gateway"], internal=d["internal"],
                   dns_enabled=d["dns_enabled"], labels=d["labels"], options=d["options"],
                   created=d["created"])


def attachment_doc(container_name: str, hostname: str, netns: str, interface: str, ip: str,
                   mac: str, aliases: list[str], seq: int) -> bytes:
    """The record of an endpoint as stored under `attachments/<container>/<network>`."""
    return json.dumps({"container_name": container_name, "hostname": hostname,
                       "netns": netns, "interface": interface, "ip": ip, "mac": mac,
                       "aliases": aliases, "seq": seq}).encode()


def _attachment_doc(att: Attachment, ip: str, seq: int) -> bytes:
    return attachment_doc(att.container_name, att.hostname, att.netns, att.interface, ip,
                          att.mac, att.aliases, seq)


def _attachment(kv: KeyValue, container_id: str, net: Network,
                ports: list[PortMapping]) -> tuple[int, Attachment]:
    d = json.loads(kv.value)
    return d["seq"], Attachment(
        container_id=container_id, network=net.name, network_id=net.id, ip=d["ip"],
        prefix=net.prefix, gateway=net.gateway, mac=d["mac"], interface=d["interface"],
        aliases=d["aliases"], hostname=d["hostname"], container_name=d["container_name"],
        netns=d["netns"], ports=ports, internal=net.internal,
        dns_servers=[net.gateway] if net.dns_enabled else [])


def port_doc(host_ip: str, host_port: int, container_port: int, proto: str) -> bytes:
    """The record of a published port under `ports/<container>/<network>/<n>`."""
    return json.dumps({"host_ip": host_ip, "host_port": host_port,
                       "container_port": container_port, "proto": proto}).encode()


def _port_doc(p: PortMapping) -> bytes:
    return port_doc(p.host_ip, p.host_port, p.container_port, p.proto)


def _port_from_doc(value: bytes) -> PortMapping:
    d = json.loads(value)
    return PortMapping(d["host_ip"], d["host_port"], d["container_port"], d["proto"])
