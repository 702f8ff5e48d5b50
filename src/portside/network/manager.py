"""NetworkManager: the network layer's public surface for the engine, the API and the CLI.

Lifecycle: `create` a network (a record; its bridge appears with the first container),
`attach` a container's namespace to it (lease an address, reserve host ports, let
netavark wire the veth, rules and DNS), `detach` or `release_all` (undo exactly that),
`remove` or `prune` networks without containers. `recover` at daemon start drops the
attachments of containers that no longer run, so a restart leaves nothing behind.

Names: the root's shared dnsmasq (`dns`) and the private ones of containers with `--dns`
(`resolvers`) are synced together after every attach and detach.
"""

from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import logging
import os
import re
import secrets
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from portside.network import firewall, legacy, subnets
from portside.network.cni import CniBridge
from portside.network.dns import DnsServer
from portside.network.driver import Driver, Endpoint
from portside.network.errors import (
    InvalidNetworkArgument,
    NetworkInUse,
    NetworkSetupFailed,
    NotAttached,
    PortInUse,
    PredefinedNetwork,
)
from portside.network.netavark import Netavark
from portside.network.netns import NETNS_DIR, create_netns
from portside.network.ports import (
    PortMapping,
    any_free_port,
    check_no_duplicates,
    host_port_free,
)
from portside.network.resolver import ContainerResolvers
from portside.network.store import SERVICES, Attachment, Network, NetworkStore
from portside.state.backend import StateBackend
from portside.state.sqlite import SqliteBackend

if TYPE_CHECKING:
    from portside.network.services import KernelBalancer

log = logging.getLogger("portside.network")

DEFAULT_NETWORK = "bridge"
# (action, network, Docker's attributes): create, connect, disconnect, destroy
NetworkEvent = Callable[[str, Network, dict[str, str]], object]
PREDEFINED = ("bridge", "host", "none")
STATE_FILE = "state.db"  # the root's state backend, as the engine opens it
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
_ALIAS = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_-]{1,63})*$")


def validate_alias(alias: str) -> str:
    if not _ALIAS.match(alias):
        raise InvalidNetworkArgument(f"invalid network alias {alias!r}: use DNS name characters")
    return alias


class NetworkManager:
    """Networks and container endpoints under one portside root."""

    def __init__(self, root: Path, *, backend: StateBackend | None = None,
                 netns_dir: Path = NETNS_DIR, default_bridge: str = "portside0",
                 default_subnet: str | None = None,
                 on_event: NetworkEvent | None = None) -> None:
        self.root = root
        self.on_event = on_event
        self.dir = root / "network"
        self.dir.mkdir(parents=True, exist_ok=True)
        # the engine passes its backend; on its own (tools, tests) the manager opens the
        # root's, and closes it with itself
        self._owns_backend = backend is None
        self.backend = backend if backend is not None else SqliteBackend(root / STATE_FILE)
        legacy.migrate(self.dir, self.backend)
        self.store = NetworkStore(self.backend)
        # user-defined bridges are named <prefix><id>, the prefix unique to this root, so
        # the DNS server can listen on exactly this root's bridges
        tag = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:4]
        self.bridge_prefix = f"ps{tag}"
        self.dns = DnsServer(self.dir / "dns", self.bridge_prefix)
        self.resolvers = ContainerResolvers(self.dir / "resolvers")
        self.table = firewall.table_name(tag)
        self.driver: Driver = (Netavark(self.dir / "netavark", netns_dir)
                               if os.environ.get("PORTSIDE_NETWORK_DRIVER") == "netavark"
                               else CniBridge())
        self.netns_dir = netns_dir
        self.default_bridge = default_bridge
        self.default_subnet = default_subnet
        self._lock = threading.RLock()
        self._balancer: KernelBalancer | None = None

    def balancer(self) -> KernelBalancer:
        """The root's service balancer (`portside.network.balancer.ServiceBalancer`):
        service VIPs, kernel load balancing and service names on this root's networks."""
        with self._lock:
            if self._balancer is None:
                # imported here: a container's run never needs the services' modules
                from portside.network.services import KernelBalancer

                self._balancer = KernelBalancer(self)
            return self._balancer

    def _event(self, action: str, net: Network, container_id: str = "") -> None:
        """Tell `on_event` (the daemon's event stream) of a network's create, connect,
        disconnect or destroy, with Docker's attributes; never fails the operation."""
        if self.on_event is None:
            return
        attrs = {"name": net.name, "type": net.driver}
        if container_id:
            attrs["container"] = container_id
        try:
            self.on_event(action, net, attrs)
        except Exception:  # noqa: BLE001 - an event is a report, not part of the change
            log.exception("network event %s of %s", action, net.name)

    def close(self) -> None:
        """Remove the bridges of networks without endpoints (they come back with the next
        container) and close the store: a stopped daemon leaves no idle bridge behind."""
        with suppress(Exception), self.locked():
            used = {a.network_id for a in self.store.attachments()}
            for net in self.store.networks():
                if net.id not in used:
                    _delete_link(net.bridge)
            self._apply_firewall()  # their rules go with them
        self.store.close()
        if self._owns_backend:
            self.backend.close()

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One change at a time per root, across threads and processes."""
        with self._lock, open(self.dir / "lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # -- networks ---------------------------------------------------------------------

    def _taken_subnets(self) -> list[tuple[ipaddress.IPv4Network, str]]:
        taken = [(ipaddress.IPv4Network(n.subnet), f"network {n.name}")
                 for n in self.store.networks()]
        own = {n.bridge for n in self.store.networks()}
        return taken + [(net, what) for net, what in subnets.host_networks()
                        if not any(what.endswith(f" {b}") for b in own)]

    def default_network(self) -> Network:
        """The `bridge` network of plain `run`, created on first use."""
        net = self.store.find_network(DEFAULT_NETWORK)
        if net is not None:
            return net
        with self.locked():
            net = self.store.find_network(DEFAULT_NETWORK)
            if net is not None:
                return net
            taken = self._taken_subnets()
            if self.default_subnet:
                subnet = subnets.parse_subnet(self.default_subnet)
                subnets.check_overlap(subnet, taken)
            else:
                subnet = subnets.pick_subnet(subnets.candidates(subnets.DEFAULT_BRIDGE_POOL),
                                             taken)
            net = self._record(DEFAULT_NETWORK, subnet, None, internal=False, dns=False,
                               labels={}, options={}, bridge=self.default_bridge)
            self.store.add_network(net)
            return net

    def create(self, name: str, *, subnet: str | None = None, gateway: str | None = None,
               internal: bool = False, labels: dict[str, str] | None = None,
               options: dict[str, str] | None = None, driver: str = "bridge") -> Network:
        """A user-defined bridge network with its own subnet, bridge and DNS."""
        if not _NAME.match(name):
            raise InvalidNetworkArgument(f"invalid network name {name!r}")
        if name in PREDEFINED:
            raise InvalidNetworkArgument(f"network name {name} is reserved")
        if driver != "bridge":
            raise InvalidNetworkArgument(f"network driver {driver!r} is not supported: use bridge")
        with self.locked():
            taken = self._taken_subnets()
            if subnet:
                net = subnets.parse_subnet(subnet)
                subnets.check_overlap(net, taken)
            else:
                pool, prefix = subnets.USER_POOL
                net = subnets.pick_subnet(subnets.candidates(pool, prefix), taken)
            gw = subnets.parse_gateway(gateway, net) if gateway else None
            rec = self._record(name, net, gw, internal=internal, dns=True,
                               labels=labels or {}, options=options or {})
            self.store.add_network(rec)
        self._event("create", rec)
        return rec

    def _record(self, name: str, subnet: ipaddress.IPv4Network,
                gateway: ipaddress.IPv4Address | None, *, internal: bool, dns: bool,
                labels: dict[str, str], options: dict[str, str],
                bridge: str | None = None) -> Network:
        nid = secrets.token_hex(32)
        return Network(
            id=nid, name=name, driver="bridge", bridge=bridge or f"{self.bridge_prefix}{nid[:9]}",
            subnet=str(subnet), gateway=str(gateway or subnet.network_address + 1),
            internal=internal, dns_enabled=dns, labels=labels, options=options,
            created=datetime.now(UTC).isoformat().replace("+00:00", "Z"))

    def get(self, ref: str) -> Network:
        if ref == DEFAULT_NETWORK:
            return self.default_network()
        return self.store.get_network(ref)

    def networks(self) -> list[Network]:
        """Every network, the default `bridge` first, then by name."""
        self.default_network()
        return sorted(self.store.networks(), key=lambda n: (n.name != DEFAULT_NETWORK, n.name))

    def containers(self, ref: str) -> list[Attachment]:
        return self.store.attachments(network_id=self.get(ref).id)

    def remove(self, ref: str) -> Network:
        """Remove a network without containers; its bridge went with its last container."""
        if ref in PREDEFINED:
            raise PredefinedNetwork(ref)
        with self.locked():
            net = self.store.get_network(ref)
            if net.name == DEFAULT_NETWORK:
                raise PredefinedNetwork(net.name)
            users = [a.container_id for a in self.store.attachments(network_id=net.id)]
            if self.store.backend.range(SERVICES)[0]:
                users += self.balancer().users(net.id)
            if users:
                raise NetworkInUse(net.name, users)
            self.store.remove_network(net.id)
            _delete_link(net.bridge)  # normally gone already; a crash may have left it
            self._apply_firewall()
        self._event("destroy", net)
        return net

    def prune(self, labels: dict[str, str] | None = None) -> list[str]:
        """Remove every user-defined network without containers (matching `labels`)."""
        removed = []
        for net in self.store.networks():
            if net.name in PREDEFINED:
                continue
            if labels and any(net.labels.get(k) != v for k, v in labels.items()):
                continue
            if not self.store.attachments(network_id=net.id):
                self.remove(net.id)
                removed.append(net.name)
        return removed

    # -- endpoints --------------------------------------------------------------------

    def attach(self, container_id: str, netns_path: str | Path, network_name: str, *,
               aliases: Iterable[str] = (), ip: str | None = None, hostname: str = "",
               container_name: str = "", ports: Iterable[PortMapping] = (),
               interface: str | None = None) -> Attachment:
        """Connect the namespace at `netns_path` to a network; returns the new endpoint.

        Ports are published through this endpoint (the engine passes them with the first
        network, as Docker does). Nothing is left configured when this raises.
        """
        net = self.get(network_name)
        alias_list = [validate_alias(a) for a in aliases]
        name = container_name or container_id[:12]
        wanted = list(ports)
        check_no_duplicates(wanted)
        with self.locked():
            current = self.store.attachments(container_id=container_id)
            if any(a.network_id == net.id for a in current):
                from portside.network.errors import AlreadyAttached
                raise AlreadyAttached(container_id, net.name)
            fixed = (str(subnets.parse_address(ip, ipaddress.IPv4Network(net.subnet), net.name))
                     if ip else None)
            resolved = self._resolve_ports(wanted)
            att = Attachment(container_id=container_id, network=net.name, network_id=net.id,
                             ip="", prefix=net.prefix, gateway=net.gateway,
                             interface=interface or f"eth{len(current)}",
                             aliases=alias_list, hostname=hostname, container_name=name,
                             netns=str(netns_path), internal=net.internal)
            att = self.store.reserve(att, net, fixed, resolved)
            ep = self._endpoint(att, net)
            try:
                status = self.driver.setup(str(netns_path), ep)
                self._apply_firewall(added=att)
                if net.dns_enabled:
                    self._sync_dns(container_id)
                    self.dns.wait_listening(net.gateway)
            except BaseException:
                with suppress(NetworkSetupFailed):
                    self.driver.teardown(str(netns_path), ep)
                self.store.release(container_id, net.id)
                with suppress(NetworkSetupFailed):
                    self._apply_firewall()
                    if net.dns_enabled:
                        self._sync_dns()
                if not self.store.attachments(network_id=net.id):
                    self.driver.network_gone(net)
                raise
            iface = status.get("interfaces", {}).get(att.interface, {})
            att.mac = iface.get("mac_address", "")
            att.dns_servers = [net.gateway] if net.dns_enabled else []
            self.store.set_mac(container_id, net.id, att.mac)
        self._event("connect", net, container_id)
        return att

    def rename(self, container_id: str, name: str) -> None:
        """`docker rename`: DNS answers the container's new name (and no more the old)."""
        with self.locked():
            if not self.store.attachments(container_id=container_id):
                return
            self.store.rename(container_id, name)
            self._sync_dns()

    def _apply_firewall(self, added: Attachment | None = None,
                        removed: Attachment | None = None) -> None:
        """Our nftables table made to match the store (netavark keeps its own rules): when
        one endpoint came or went and the table's shape is what this root last loaded
        (recorded in `firewall.shape`, under the root's lock, whichever process loaded
        it), only its published ports change; else the table is rebuilt."""
        if self.driver.manages_firewall:
            return
        endpoints = self.store.attachments()
        used = {a.network_id for a in endpoints}
        active = [n for n in self.store.networks()
                  if n.id in used or os.path.exists(f"/sys/class/net/{n.bridge}")]
        shape = firewall.shape(self.table, active, endpoints)
        record = self.dir / "firewall.shape"
        if (added or removed) and shape:
            try:
                same = record.read_text() == shape
            except OSError:
                same = False
            if same:
                try:
                    firewall.update_ports(self.table, [added] if added else [],
                                          [removed] if removed else [])
                    return
                except NetworkSetupFailed:
                    pass  # the table is not what we left (flushed by hand?): rebuild it
        record.unlink(missing_ok=True)  # unknown until the new table is in
        firewall.apply(self.table, active, endpoints)
        if shape:
            tmp = record.with_suffix(".tmp")
            tmp.write_text(shape)
            os.replace(tmp, record)

    def sync_dns(self) -> None:
        """Make the root's DNS servers answer what the store holds (under `locked`)."""
        self._sync_dns()

    def _sync_dns(self, container_id: str | None = None) -> None:
        """Every DNS server of the root answers exactly the endpoints and services that
        exist; a failure to start the private server of `container_id` (being attached) is
        raised."""
        attachments = self.store.attachments()
        services: list[str] = []
        if self._balancer is not None or self.store.backend.range(SERVICES)[0]:
            services = self.balancer().dns_lines()
        self.dns.sync([a for a in attachments if a.dns_servers], services)
        self.resolvers.sync(attachments, strict=container_id)

    def _endpoint(self, att: Attachment, net: Network) -> Endpoint:
        return Endpoint(container_id=att.container_id, container_name=att.container_name,
                        network=net, ip=att.ip, interface=att.interface, ports=tuple(att.ports))

    def _resolve_ports(self, wanted: list[PortMapping]) -> list[PortMapping]:
        """Check each host port is free (ours and the host's) and pick ports for 0/ranges."""
        used = self.store.used_ports()

        def holder(m_ip: str, port: int, proto: str) -> str | None:
            for h_ip, h_port, h_proto, cid in used:
                if h_port == port and h_proto == proto and (not h_ip or not m_ip or h_ip == m_ip):
                    return f"container {cid[:12]}"
            if not host_port_free(m_ip, port, proto):
                return "a host process holds it"
            return None

        out: list[PortMapping] = []
        for m in wanted:
            if m.host_port and not m.host_port_end:
                who = holder(m.host_ip, m.host_port, m.proto)
                if who:
                    raise PortInUse(m.host_ip, m.host_port, m.proto, who)
                port = m.host_port
            elif m.host_port_end:
                port = next((p for p in range(m.host_port, m.host_port_end + 1)
                             if holder(m.host_ip, p, m.proto) is None), 0)
                if not port:
                    raise PortInUse(m.host_ip, m.host_port, m.proto,
                                    f"every port up to {m.host_port_end} is taken")
            else:
                port = 0
                for _ in range(100):
                    cand = any_free_port(m.host_ip, m.proto)
                    if holder(m.host_ip, cand, m.proto) is None and all(
                            o.host_port != cand or o.proto != m.proto for o in out):
                        port = cand
                        break
                if not port:
                    raise PortInUse(m.host_ip, 0, m.proto, "no free host port found")
            out.append(PortMapping(m.host_ip, port, m.container_port, m.proto))
            used.append((m.host_ip, port, m.proto, "(this container)"))
        return out

    def detach(self, container_id: str, netns_path: str | Path | None,
               network_name: str) -> None:
        """Disconnect a container from one network, removing its veth, rules and DNS names."""
        net = self.get(network_name)
        with self.locked():
            atts = [a for a in self.store.attachments(container_id=container_id)
                    if a.network_id == net.id]
            if not atts:
                raise NotAttached(container_id, net.name)
            self._teardown(atts[0], net, netns_path)

    def _teardown(self, att: Attachment, net: Network, netns_path: str | Path | None) -> None:
        ep = self._endpoint(att, net)
        path = Path(netns_path or att.netns)
        # A failed teardown (a veth already gone with its namespace) must not keep the
        # record: the rest (rules, names, the lease) is undone regardless.
        with suppress(NetworkSetupFailed):
            if path.exists():
                self.driver.teardown(str(path), ep)
            else:
                self.driver.teardown_without_netns(ep)
        self.store.release(att.container_id, att.network_id)
        self._event("disconnect", net, att.container_id)
        self._apply_firewall(removed=att)
        if net.dns_enabled:
            self._sync_dns()
        if not self.store.attachments(network_id=net.id):
            self.driver.network_gone(net)

    def release_all(self, container_id: str, netns_path: str | Path | None = None) -> None:
        """Detach a container from every network; safe to call again (idempotent)."""
        with self.locked():
            self.resolvers.forget(container_id)  # out of the namespace before anything else
            for att in reversed(self.store.attachments(container_id=container_id)):
                self._teardown(att, self.store.get_network(att.network_id), netns_path)

    def recover(self, live_containers: Iterable[str]) -> list[str]:
        """At daemon start: release the endpoints of containers not in `live_containers`."""
        live = set(live_containers)
        gone = sorted({a.container_id for a in self.store.attachments()} - live)
        for cid in gone:
            self.release_all(cid)
        with self.locked():
            # private DNS servers: those of containers that are gone stop; those of live
            # ones are found again by their pid files, or started again
            for cid in self.resolvers.containers() - live:
                self.resolvers.forget(cid)
            self.resolvers.sync(self.store.attachments())
        return gone

    def forget_resolver(self, container_id: str) -> None:
        """Stop the private DNS server of a container (before its namespace goes)."""
        if not self.resolvers.has(container_id):
            return  # most containers: no lock taken
        with self.locked():
            self.resolvers.forget(container_id)

    def purge(self) -> None:
        """Remove every endpoint, network and bridge of this root, the default one too
        (for tests, benchmarks and uninstalling; the host is left as it was)."""
        if self.store.backend.range(SERVICES)[0]:
            self.balancer().purge()
        for cid in sorted({a.container_id for a in self.store.attachments()}):
            self.release_all(cid)
        for net in self.store.networks():
            if net.name != DEFAULT_NETWORK:
                self.remove(net.id)
            else:
                _delete_link(net.bridge)
        with self.locked():
            self._apply_firewall()  # no bridge left: the table goes
        self.dns.stop()
        self.resolvers.stop_all()

    def attachments(self, container_id: str) -> list[Attachment]:
        return self.store.attachments(container_id=container_id)

    def published_ports(self, container_id: str) -> list[PortMapping]:
        return [p for a in self.store.attachments(container_id=container_id) for p in a.ports]


def _delete_link(name: str) -> None:
    subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)


def new_netns(container_id: str, directory: Path = NETNS_DIR) -> Path:
    """The namespace a container joins: `<directory>/<container_id>`."""
    return create_netns(container_id, directory)


__all__ = ["NetworkManager", "new_netns"]
