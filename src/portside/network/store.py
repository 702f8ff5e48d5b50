"""The network store: networks, address leases, attachments and published ports in SQLite.

An address is leased in the same transaction that records the attachment, and a lease is
dropped only with its attachment, so no address is handed out twice, also across daemon
restarts. Leases are handed out round-robin (after the last one given) so an address just
released is not reused at once, which keeps stale ARP and DNS caches harmless.
"""

from __future__ import annotations

import ipaddress
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portside import sqlitedb
from portside.network.errors import (
    AddressInUse,
    AddressPoolExhausted,
    NetworkExists,
    NetworkNotFound,
)
from portside.network.ports import PortMapping

SCHEMA = """
CREATE TABLE IF NOT EXISTS networks (
    id          TEXT PRIMARY KEY,
    name        TEXT UNIQUE NOT NULL,
    driver      TEXT NOT NULL,
    bridge      TEXT UNIQUE NOT NULL,
    subnet      TEXT NOT NULL,
    gateway     TEXT NOT NULL,
    internal    INTEGER NOT NULL,
    dns_enabled INTEGER NOT NULL,
    labels      TEXT NOT NULL,
    options     TEXT NOT NULL,
    created     TEXT NOT NULL,
    last_ip     TEXT
);
CREATE TABLE IF NOT EXISTS attachments (
    container_id   TEXT NOT NULL,
    network_id     TEXT NOT NULL REFERENCES networks(id),
    container_name TEXT NOT NULL,
    hostname       TEXT NOT NULL,
    netns          TEXT NOT NULL,
    interface      TEXT NOT NULL,
    ip             TEXT NOT NULL,
    mac            TEXT NOT NULL,
    aliases        TEXT NOT NULL,
    seq            INTEGER NOT NULL,
    PRIMARY KEY (container_id, network_id),
    UNIQUE (network_id, ip)
);
CREATE TABLE IF NOT EXISTS ports (
    container_id   TEXT NOT NULL,
    network_id     TEXT NOT NULL,
    host_ip        TEXT NOT NULL,
    host_port      INTEGER NOT NULL,
    container_port INTEGER NOT NULL,
    proto          TEXT NOT NULL,
    FOREIGN KEY (container_id, network_id) REFERENCES attachments(container_id, network_id)
        ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS ports_by_host ON ports(host_port, proto);
"""


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
    """Records under `<root>/network/network.db` (WAL); safe across threads and processes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlitedb.connect(path, SCHEMA)
        self._lock = threading.RLock()

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One writer at a time, across processes too (BEGIN IMMEDIATE)."""
        with self._lock, sqlitedb.transaction(self.db) as db:
            yield db

    # -- networks ---------------------------------------------------------------------

    def add_network(self, net: Network) -> None:
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM networks WHERE name=?", (net.name,)).fetchone():
                raise NetworkExists(net.name)
            db.execute(
                "INSERT INTO networks VALUES (?,?,?,?,?,?,?,?,?,?,?,NULL)",
                (net.id, net.name, net.driver, net.bridge, net.subnet, net.gateway,
                 int(net.internal), int(net.dns_enabled), json.dumps(net.labels),
                 json.dumps(net.options), net.created))

    def remove_network(self, network_id: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM networks WHERE id=?", (network_id,))

    def networks(self) -> list[Network]:
        with self._lock:
            rows = self.db.execute("SELECT * FROM networks ORDER BY created, name").fetchall()
        return [_network(r) for r in rows]

    def find_network(self, ref: str) -> Network | None:
        """By name, full id, or unique id prefix (Docker's lookup order)."""
        with self._lock:
            row = self.db.execute("SELECT * FROM networks WHERE name=? OR id=?",
                                  (ref, ref)).fetchone()
            if row is None and ref and all(c in "0123456789abcdef" for c in ref):
                rows = self.db.execute("SELECT * FROM networks WHERE id LIKE ?",
                                       (ref + "%",)).fetchall()
                row = rows[0] if len(rows) == 1 else None
        return _network(row) if row else None

    def get_network(self, ref: str) -> Network:
        net = self.find_network(ref)
        if net is None:
            raise NetworkNotFound(ref)
        return net

    # -- attachments and leases -------------------------------------------------------

    def reserve(self, att: Attachment, net: Network, fixed_ip: str | None,
                ports: list[PortMapping]) -> Attachment:
        """Lease an address (fixed or next free) and record the attachment and its ports."""
        with self.transaction() as db:
            subnet = ipaddress.IPv4Network(net.subnet)
            used = {r[0] for r in db.execute(
                "SELECT ip FROM attachments WHERE network_id=?", (net.id,))}
            used.add(net.gateway)
            if fixed_ip is not None:
                if fixed_ip in used:
                    raise AddressInUse(fixed_ip, net.name)
                ip = fixed_ip
            else:
                row = db.execute("SELECT last_ip FROM networks WHERE id=?", (net.id,)).fetchone()
                ip = _next_free(subnet, used, row[0] if row else None, net.name)
                db.execute("UPDATE networks SET last_ip=? WHERE id=?", (ip, net.id))
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM attachments "
                             "WHERE container_id=?", (att.container_id,)).fetchone()[0]
            db.execute("INSERT INTO attachments VALUES (?,?,?,?,?,?,?,?,?,?)",
                       (att.container_id, net.id, att.container_name, att.hostname, att.netns,
                        att.interface, ip, att.mac, json.dumps(att.aliases), seq))
            db.executemany("INSERT INTO ports VALUES (?,?,?,?,?,?)", [
                (att.container_id, net.id, p.host_ip, p.host_port, p.container_port, p.proto)
                for p in ports])
        att.ip, att.ports = ip, list(ports)
        return att

    def set_mac(self, container_id: str, network_id: str, mac: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE attachments SET mac=? WHERE container_id=? AND network_id=?",
                       (mac, container_id, network_id))

    def rename(self, container_id: str, name: str) -> None:
        """A container's new name on every network it is on (what DNS answers)."""
        with self.transaction() as db:
            db.execute("UPDATE attachments SET container_name=? WHERE container_id=?",
                       (name, container_id))

    def release(self, container_id: str, network_id: str) -> None:
        """Drop an attachment with its lease and ports."""
        with self.transaction() as db:
            db.execute("DELETE FROM attachments WHERE container_id=? AND network_id=?",
                       (container_id, network_id))

    def attachments(self, *, container_id: str | None = None,
                    network_id: str | None = None) -> list[Attachment]:
        """Attachments, a container's in the order they were made."""
        sql = ("SELECT a.*, n.name AS net_name, n.subnet, n.gateway, n.internal, "
               "n.dns_enabled "
               "FROM attachments a JOIN networks n ON n.id = a.network_id WHERE 1=1")
        args: list[Any] = []
        if container_id is not None:
            sql += " AND a.container_id=?"
            args.append(container_id)
        if network_id is not None:
            sql += " AND a.network_id=?"
            args.append(network_id)
        with self._lock:
            rows = self.db.execute(sql + " ORDER BY a.container_id, a.seq", args).fetchall()
            out = []
            for r in rows:
                ports = [PortMapping(p["host_ip"], p["host_port"], p["container_port"],
                                     p["proto"])
                         for p in self.db.execute(
                             "SELECT * FROM ports WHERE container_id=? AND network_id=? "
                             "ORDER BY rowid", (r["container_id"], r["network_id"]))]
                out.append(Attachment(
                    container_id=r["container_id"], network=r["net_name"],
                    network_id=r["network_id"], ip=r["ip"],
                    prefix=ipaddress.IPv4Network(r["subnet"]).prefixlen, gateway=r["gateway"],
                    mac=r["mac"], interface=r["interface"], aliases=json.loads(r["aliases"]),
                    hostname=r["hostname"], container_name=r["container_name"],
                    netns=r["netns"], ports=ports, internal=bool(r["internal"]),
                    dns_servers=[r["gateway"]] if r["dns_enabled"] else []))
        return out

    def used_ports(self) -> list[tuple[str, int, str, str]]:
        """(host_ip, host_port, proto, container_id) of every published port."""
        with self._lock:
            return [(r[0], r[1], r[2], r[3]) for r in self.db.execute(
                "SELECT host_ip, host_port, proto, container_id FROM ports")]


def _next_free(subnet: ipaddress.IPv4Network, used: set[str], last: str | None,
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


def _network(row: sqlite3.Row) -> Network:
    return Network(id=row["id"], name=row["name"], driver=row["driver"], bridge=row["bridge"],
                   subnet=row["subnet"], gateway=row["gateway"], internal=bool(row["internal"]),
                   dns_enabled=bool(row["dns_enabled"]), labels=json.loads(row["labels"]),
                   options=json.loads(row["options"]), created=row["created"])
