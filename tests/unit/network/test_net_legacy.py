"""A root's network records from before the state backend (`network/network.db`) open with
every network, endpoint, lease and published port, and IPAM goes on where it was."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from portside.network import legacy
from portside.network.errors import AddressInUse, NetworkExists, PortInUse
from portside.network.manager import NetworkManager
from portside.network.ports import PortMapping
from portside.network.store import Attachment, Network, NetworkStore
from portside.state import SqliteBackend

# network.db's schema as the network store wrote it before (network/store.py's SCHEMA),
# copied here so the test keeps it when the code no longer has it.
OLD_SCHEMA = """
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

BRIDGE = "1" * 64
FRONT = "2" * 64
C1 = "c" * 64
C2 = "d" * 64


def _old_network_db(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(directory / "network.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(OLD_SCHEMA)
    conn.execute("INSERT INTO networks VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                 (BRIDGE, "bridge", "bridge", "pstold0", "10.210.60.0/24", "10.210.60.1", 0, 0,
                  "{}", "{}", "2024-01-01T00:00:00Z", "10.210.60.7"))
    conn.execute("INSERT INTO networks VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                 (FRONT, "front", "bridge", "psold" + FRONT[:9], "10.210.61.0/24",
                  "10.210.61.1", 1, 1, json.dumps({"tier": "web"}), json.dumps({"mtu": "1400"}),
                  "2024-01-02T00:00:00Z", None))
    for cid, nid, ip, seq in ((C1, BRIDGE, "10.210.60.7", 1), (C1, FRONT, "10.210.61.9", 2),
                              (C2, BRIDGE, "10.210.60.3", 1)):
        conn.execute("INSERT INTO attachments VALUES (?,?,?,?,?,?,?,?,?,?)",
                     (cid, nid, f"n-{cid[:2]}", f"h-{cid[:2]}", f"/run/netns/{cid}",
                      f"eth{seq - 1}", ip, "02:42:0a:d2:3c:07", json.dumps(["web", "www"]),
                      seq))
    conn.execute("INSERT INTO ports VALUES (?,?,?,?,?,?)", (C1, BRIDGE, "", 8080, 80, "tcp"))
    conn.execute("INSERT INTO ports VALUES (?,?,?,?,?,?)",
                 (C1, BRIDGE, "127.0.0.1", 5353, 53, "udp"))
    conn.execute("INSERT INTO ports VALUES (?,?,?,?,?,?)", (C2, BRIDGE, "", 9090, 90, "tcp"))
    conn.close()


def test_an_old_network_db_opens_with_everything_in_it(tmp_path: Path) -> None:
    directory = tmp_path / "network"
    _old_network_db(directory)
    backend = SqliteBackend(tmp_path / "state.db")
    assert legacy.migrate(directory, backend) == 2 * 2 + 1 + 3 * 2 + 3
    store = NetworkStore(backend)
    front = store.get_network("front")
    assert front == Network(id=FRONT, name="front", driver="bridge",
                            bridge="psold" + FRONT[:9], subnet="10.210.61.0/24",
                            gateway="10.210.61.1", internal=True, dns_enabled=True,
                            labels={"tier": "web"}, options={"mtu": "1400"},
                            created="2024-01-02T00:00:00Z")
    assert [n.name for n in store.networks()] == ["bridge", "front"]
    c1 = store.attachments(container_id=C1)
    assert [(a.network, a.ip, a.interface) for a in c1] == [
        ("bridge", "10.210.60.7", "eth0"), ("front", "10.210.61.9", "eth1")]
    assert c1[0].ports == [PortMapping("", 8080, 80), PortMapping("127.0.0.1", 5353, 53, "udp")]
    assert (c1[1].aliases, c1[1].hostname, c1[1].container_name, c1[1].netns, c1[1].mac) == (
        ["web", "www"], "h-cc", "n-cc", f"/run/netns/{C1}", "02:42:0a:d2:3c:07")
    assert c1[1].internal and c1[1].dns_servers == ["10.210.61.1"]
    assert sorted(store.used_ports()) == [("", 8080, "tcp", C1), ("", 9090, "tcp", C2),
                                          ("127.0.0.1", 5353, "udp", C1)]
    # IPAM goes on where it was: leased addresses stay taken, the cursor is kept
    bridge = store.get_network("bridge")
    with pytest.raises(AddressInUse):
        store.reserve(_att("e" * 64, bridge), bridge, "10.210.60.3", [])
    assert store.reserve(_att("e" * 64, bridge), bridge, None, []).ip == "10.210.60.8"
    with pytest.raises(NetworkExists):
        store.add_network(Network(id="3" * 64, name="front", driver="bridge", bridge="x",
                                  subnet="10.210.62.0/24", gateway="10.210.62.1",
                                  internal=False, dns_enabled=True))
    assert not (directory / "network.db").exists()
    assert (directory / "network.db.migrated").exists()
    assert legacy.migrate(directory, backend) == 0
    backend.close()


def _att(cid: str, net: Network) -> Attachment:
    return Attachment(container_id=cid, network=net.name, network_id=net.id, ip="",
                      prefix=net.prefix, gateway=net.gateway)


def test_the_manager_moves_them_when_it_opens(tmp_path: Path) -> None:
    """A NetworkManager on the old root (no bridge is made: records only)."""
    _old_network_db(tmp_path / "network")
    m = NetworkManager(tmp_path, default_bridge="pstold0")
    try:
        assert m.get("bridge").id == BRIDGE
        assert [a.container_id for a in m.containers("bridge")] == [C1, C2]
        assert m.published_ports(C2) == [PortMapping("", 9090, 90)]
        with pytest.raises(PortInUse, match="container dddddddddddd"):
            m._resolve_ports([PortMapping("", 9090, 90)])
    finally:
        m.store.close()
        m.backend.close()
    assert (tmp_path / "state.db").exists()
