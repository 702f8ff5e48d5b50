"""A root written by the engine before the state backend (`engine.db`) opens with every
container, exec and volume in place, and the old file is kept aside, not deleted."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from portside.engine import legacy
from portside.engine.state import Container, NameInUse, StateStore, new_state
from portside.engine.volumes import VolumeStore
from portside.state import SqliteBackend

# The schema of engine.db as the engine wrote it before (engine/state.py's and
# engine/volumes.py's SCHEMA constants), copied here so the test keeps it when the code
# no longer has it.
OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS containers (
    id            TEXT PRIMARY KEY,
    name          TEXT UNIQUE NOT NULL,
    created       TEXT NOT NULL,
    image         TEXT NOT NULL,
    image_id      TEXT NOT NULL,
    config        TEXT NOT NULL,
    host_config   TEXT NOT NULL,
    state         TEXT NOT NULL,
    mounts        TEXT NOT NULL,
    restart_count INTEGER NOT NULL DEFAULT 0,
    runtime       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS execs (
    id           TEXT PRIMARY KEY,
    container_id TEXT NOT NULL,
    config       TEXT NOT NULL,
    state        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS volumes (
    name      TEXT PRIMARY KEY,
    created   TEXT NOT NULL,
    labels    TEXT NOT NULL,
    anonymous INTEGER NOT NULL DEFAULT 0
);
"""

A = "a" * 64
B = "b" * 64
STATE = {"Status": "running", "Running": True, "Paused": False, "Restarting": False,
         "OOMKilled": False, "Dead": False, "Pid": 4242, "ExitCode": 0, "Error": "",
         "StartedAt": "2024-01-01T00:00:01Z", "FinishedAt": "0001-01-01T00:00:00Z"}
MOUNTS = [{"Type": "volume", "Name": "data", "Destination": "/data", "RW": True}]


def _old_engine_db(root: Path) -> None:
    """engine.db as the old code left it (WAL mode)."""
    conn = sqlite3.connect(root / "engine.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(OLD_SCHEMA)
    conn.execute("INSERT INTO containers VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                 (A, "web", "2024-01-01T00:00:00Z", "busybox", "sha256:" + "1" * 64,
                  json.dumps({"Cmd": ["httpd"], "Labels": {"tier": "web"}}),
                  json.dumps({"NetworkMode": "bridge", "RestartPolicy": {"Name": "always"}}),
                  json.dumps(STATE), json.dumps(MOUNTS), 3, "runc"))
    conn.execute("INSERT INTO containers VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                 (B, "db", "2024-02-01T00:00:00Z", "busybox", "sha256:" + "2" * 64,
                  json.dumps({"Cmd": ["sleep", "1"]}), json.dumps({}),
                  json.dumps({**STATE, "Status": "exited", "Running": False, "Pid": 0}),
                  "[]", 0, "crun"))
    conn.execute("INSERT INTO execs VALUES (?,?,?,?)",
                 ("e" * 64, A, json.dumps({"Cmd": ["ls"]}), json.dumps({"ExitCode": 2})))
    conn.execute("INSERT INTO volumes VALUES (?,?,?,?)",
                 ("data", "2024-01-01T00:00:00Z", json.dumps({"k": "v"}), 0))
    conn.execute("INSERT INTO volumes VALUES (?,?,?,?)",
                 ("f" * 64, "2024-01-01T00:00:00Z", "{}", 1))
    conn.close()


def test_an_old_engine_db_opens_with_everything_in_it(tmp_path: Path) -> None:
    _old_engine_db(tmp_path)
    backend = SqliteBackend(tmp_path / "state.db")
    assert legacy.migrate(tmp_path, backend) == 7  # 2 records + 2 names, 1 exec, 2 volumes
    store = StateStore(backend)
    web = store.get("web")
    assert (web.id, web.created, web.image, web.image_id) == (
        A, "2024-01-01T00:00:00Z", "busybox", "sha256:" + "1" * 64)
    assert web.config == {"Cmd": ["httpd"], "Labels": {"tier": "web"}}
    assert web.host_config["RestartPolicy"] == {"Name": "always"}
    assert web.state == STATE and web.mounts == MOUNTS
    assert (web.restart_count, web.runtime) == (3, "runc")
    assert [c.name for c in store.all()] == ["db", "web"]
    assert store.names() == {"web", "db"}
    assert store.get_exec("e" * 64) == (A, {"Cmd": ["ls"]}, {"ExitCode": 2})
    vols = VolumeStore(tmp_path / "volumes", backend)
    assert [v["Name"] for v in vols.list()] == ["data", "f" * 64]
    assert vols.get("data")["Labels"] == {"k": "v"} and vols.is_anonymous("f" * 64)
    # the old file is kept aside, whole, and never read again
    assert not (tmp_path / "engine.db").exists()
    aside = sqlite3.connect(tmp_path / "engine.db.migrated")
    assert aside.execute("SELECT count(*) FROM containers").fetchone() == (2,)
    aside.close()
    assert legacy.migrate(tmp_path, backend) == 0
    # the names stay unique after the move
    with pytest.raises(NameInUse):
        store.add(Container("c" * 64, "web", "2024-03-01T00:00:00Z", "busybox", "x", {}, {},
                            new_state()))
    backend.close()
    again = SqliteBackend(tmp_path / "state.db")  # a restart: still there
    assert StateStore(again).get(B).state["Status"] == "exited"
    again.close()


def test_records_already_in_the_backend_are_not_overwritten(tmp_path: Path) -> None:
    _old_engine_db(tmp_path)
    backend = SqliteBackend(tmp_path / "state.db")
    vols = VolumeStore(tmp_path / "volumes", backend)
    vols.create("newer")
    assert legacy.migrate(tmp_path, backend) == 5  # containers and execs; volumes had one
    assert [v["Name"] for v in vols.list()] == ["newer"]
    assert StateStore(backend).get("web").id == A
    aside = sqlite3.connect(tmp_path / "engine.db.migrated")  # the old volumes are kept there
    assert aside.execute("SELECT count(*) FROM volumes").fetchone() == (2,)
    aside.close()
    backend.close()


def test_an_empty_or_missing_engine_db(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "state.db")
    assert legacy.migrate(tmp_path, backend) == 0  # no file
    sqlite3.connect(tmp_path / "engine.db").close()  # a file without tables
    assert legacy.migrate(tmp_path, backend) == 0
    assert (tmp_path / "engine.db.migrated").exists()
    assert backend.range("")[0] == []
    backend.close()
