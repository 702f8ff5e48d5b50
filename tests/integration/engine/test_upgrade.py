"""A root from before the state backend (records in `engine.db` and `network/network.db`)
comes up under the new daemon with its containers, volumes and networks, which work."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from helpers.daemon import PortsideDaemon

# The old files' schemas (engine/state.py, engine/volumes.py and network/store.py had
# them as SCHEMA), copied so the test keeps them.
OLD_ENGINE_SCHEMA = """
CREATE TABLE containers (
    id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, created TEXT NOT NULL,
    image TEXT NOT NULL, image_id TEXT NOT NULL, config TEXT NOT NULL,
    host_config TEXT NOT NULL, state TEXT NOT NULL, mounts TEXT NOT NULL,
    restart_count INTEGER NOT NULL DEFAULT 0, runtime TEXT NOT NULL
);
CREATE TABLE execs (
    id TEXT PRIMARY KEY, container_id TEXT NOT NULL, config TEXT NOT NULL, state TEXT NOT NULL
);
CREATE TABLE volumes (
    name TEXT PRIMARY KEY, created TEXT NOT NULL, labels TEXT NOT NULL,
    anonymous INTEGER NOT NULL DEFAULT 0
);
"""
OLD_NETWORK_SCHEMA = """
CREATE TABLE networks (
    id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, driver TEXT NOT NULL,
    bridge TEXT UNIQUE NOT NULL, subnet TEXT NOT NULL, gateway TEXT NOT NULL,
    internal INTEGER NOT NULL, dns_enabled INTEGER NOT NULL, labels TEXT NOT NULL,
    options TEXT NOT NULL, created TEXT NOT NULL, last_ip TEXT
);
CREATE TABLE attachments (
    container_id TEXT NOT NULL, network_id TEXT NOT NULL REFERENCES networks(id),
    container_name TEXT NOT NULL, hostname TEXT NOT NULL, netns TEXT NOT NULL,
    interface TEXT NOT NULL, ip TEXT NOT NULL, mac TEXT NOT NULL, aliases TEXT NOT NULL,
    seq INTEGER NOT NULL, PRIMARY KEY (container_id, network_id), UNIQUE (network_id, ip)
);
CREATE TABLE ports (
    container_id TEXT NOT NULL, network_id TEXT NOT NULL, host_ip TEXT NOT NULL,
    host_port INTEGER NOT NULL, container_port INTEGER NOT NULL, proto TEXT NOT NULL
);
"""


def _records(root: Path, prefix: str) -> dict[str, Any]:
    """{key after `prefix`: record} of the backend's file (its `kv` table), read directly."""
    conn = sqlite3.connect(root / "state.db")
    rows = conn.execute("SELECT key, value FROM kv WHERE key >= ? AND key < ?",
                        (prefix.encode(), prefix[:-1].encode() + b"0")).fetchall()
    conn.close()
    return {bytes(k).decode().removeprefix(prefix): json.loads(v) for k, v in rows}


def _downgrade(root: Path) -> None:
    """Rewrite the records of `state.db` as the old code kept them, and drop `state.db`."""
    containers = _records(root, "containers/").values()
    volumes = _records(root, "volumes/")
    networks = _records(root, "networks/").values()
    engine = sqlite3.connect(root / "engine.db", isolation_level=None)
    engine.execute("PRAGMA journal_mode=WAL")
    engine.executescript(OLD_ENGINE_SCHEMA)
    for c in containers:
        engine.execute("INSERT INTO containers VALUES (?,?,?,?,?,?,?,?,?,?,?)", (
            c["id"], c["name"], c["created"], c["image"], c["image_id"],
            json.dumps(c["config"]), json.dumps(c["host_config"]), json.dumps(c["state"]),
            json.dumps(c["mounts"]), c["restart_count"], c["runtime"]))
    for name, v in volumes.items():
        engine.execute("INSERT INTO volumes VALUES (?,?,?,?)",
                       (name, v["created"], json.dumps(v["labels"]), int(bool(v["anonymous"]))))
    engine.close()
    net = sqlite3.connect(root / "network" / "network.db", isolation_level=None)
    net.execute("PRAGMA journal_mode=WAL")
    net.executescript(OLD_NETWORK_SCHEMA)
    for n in networks:
        net.execute("INSERT INTO networks VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", (
            n["id"], n["name"], n["driver"], n["bridge"], n["subnet"], n["gateway"],
            int(bool(n["internal"])), int(bool(n["dns_enabled"])), json.dumps(n["labels"]),
            json.dumps(n["options"]), n["created"], None))
    net.close()
    for suffix in ("", "-wal", "-shm"):
        (root / f"state.db{suffix}").unlink(missing_ok=True)


def test_an_old_root_comes_up_with_everything(daemon: PortsideDaemon) -> None:
    daemon.cli("volume", "create", "--label", "k=v", "keep")
    daemon.cli("network", "create", "--label", "tier=web", "oldnet")
    daemon.cli("create", "--name", "old", "-v", "keep:/data", "--network", "none",
               "busybox", "sh", "-c", "cat /data/note 2>/dev/null; echo ok | tee -a /data/note")
    first = daemon.inspect("old")
    daemon.stop()
    _downgrade(daemon.root)
    assert not (daemon.root / "state.db").exists()

    daemon.start()
    assert not (daemon.root / "engine.db").exists()
    assert (daemon.root / "engine.db.migrated").exists()
    again = daemon.inspect("old")
    assert again["Id"] == first["Id"] and again["Config"] == first["Config"]
    assert again["Mounts"] == first["Mounts"]
    assert daemon.cli("ps", "-a", "--format", "{{.Names}}").stdout.split() == ["old"]
    vols = json.loads(daemon.cli("volume", "inspect", "keep").stdout)
    assert vols[0]["Labels"] == {"k": "v"}
    # it runs, twice, with its volume
    assert daemon.cli("start", "-a", "old").stdout.strip() == "ok"
    assert daemon.cli("start", "-a", "old").stdout.split() == ["ok", "ok"]
    # the name stays taken, the network is there and usable
    r = daemon.cli("create", "--name", "old", "busybox", "true", check=False)
    assert r.returncode != 0 and "already in use" in r.stderr
    nets = json.loads(daemon.cli("network", "inspect", "oldnet").stdout)
    assert nets[0]["Labels"] == {"tier": "web"}
    out = daemon.cli("run", "--rm", "--network", "oldnet", "busybox",
                     "ip", "-4", "-o", "addr", "show", "eth0").stdout
    assert nets[0]["IPAM"]["Config"][0]["Subnet"].rsplit(".", 1)[0] in out
    assert (daemon.root / "network" / "network.db.migrated").exists()  # moved when first used
    daemon.cli("rm", "old")
    daemon.cli("network", "rm", "oldnet")
    daemon.cli("volume", "rm", "keep")
