"""Container records in SQLite (WAL) under the root: what `inspect` shows, across restarts.

A record holds Docker's shapes as JSON (Config, HostConfig, State, Mounts) so the API can
serve them as they are; the columns beside them are what lookups need (id, name, image).
Ids are 64 hex characters; lookups accept a full id, a unique id prefix or a name.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from portside import sqlitedb
from portside.errors import Conflict, InvalidArgument, NotFound

SCHEMA = """
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
"""

ZERO_TIME = "0001-01-01T00:00:00Z"


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339(text: str) -> float:
    if not text or text.startswith("0001-"):
        return 0.0
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class NoSuchContainer(NotFound):
    def __init__(self, ref: str) -> None:
        super().__init__(f"No such container: {ref}")
        self.ref = ref


class NameInUse(Conflict):
    def __init__(self, name: str, holder: str) -> None:
        super().__init__(f'Conflict. The container name "/{name}" is already in use by container'
                         f' "{holder}". You have to remove (or rename) that container to be able'
                         " to reuse that name.")


def new_state() -> dict[str, Any]:
    return {"Status": "created", "Running": False, "Paused": False, "Restarting": False,
            "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
            "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME}


@dataclass
class Container:
    id: str
    name: str
    created: str
    image: str
    image_id: str
    config: dict[str, Any]
    host_config: dict[str, Any]
    state: dict[str, Any] = field(default_factory=new_state)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    restart_count: int = 0
    runtime: str = "crun"

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def status(self) -> str:
        return str(self.state["Status"])

    @property
    def running(self) -> bool:
        return bool(self.state["Running"])


class StateStore:
    """The containers table; one connection shared by the daemon's threads under a lock."""

    def __init__(self, path: Path) -> None:
        self.db = sqlitedb.connect(path, SCHEMA)
        self.lock = threading.RLock()

    def close(self) -> None:
        self.db.close()

    @staticmethod
    def _from_row(row: sqlite3.Row) -> Container:
        return Container(row["id"], row["name"], row["created"], row["image"], row["image_id"],
                         json.loads(row["config"]), json.loads(row["host_config"]),
                         json.loads(row["state"]), json.loads(row["mounts"]),
                         row["restart_count"], row["runtime"])

    def add(self, c: Container) -> None:
        with self.lock:
            row = self.db.execute("SELECT id FROM containers WHERE name = ?", (c.name,)).fetchone()
            if row is not None:
                raise NameInUse(c.name, row["id"])
            self.db.execute(
                "INSERT INTO containers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (c.id, c.name, c.created, c.image, c.image_id, json.dumps(c.config),
                 json.dumps(c.host_config), json.dumps(c.state), json.dumps(c.mounts),
                 c.restart_count, c.runtime))

    def save(self, c: Container) -> None:
        with self.lock:
            self.db.execute(
                "UPDATE containers SET name = ?, config = ?, host_config = ?, state = ?,"
                " mounts = ?, restart_count = ? WHERE id = ?",
                (c.name, json.dumps(c.config), json.dumps(c.host_config), json.dumps(c.state),
                 json.dumps(c.mounts), c.restart_count, c.id))

    def remove(self, container_id: str) -> None:
        with self.lock:
            self.db.execute("DELETE FROM containers WHERE id = ?", (container_id,))
            self.db.execute("DELETE FROM execs WHERE container_id = ?", (container_id,))

    def all(self) -> list[Container]:
        with self.lock:
            rows = self.db.execute("SELECT * FROM containers ORDER BY created DESC").fetchall()
        return [self._from_row(r) for r in rows]

    def get(self, ref: str) -> Container:
        """By full id, exact name (with or without Docker's leading `/`), or unique id prefix."""
        ref = ref.strip()
        if not ref:
            raise InvalidArgument("empty container name or id")
        with self.lock:
            row = self.db.execute("SELECT * FROM containers WHERE id = ? OR name = ?",
                                  (ref, ref.removeprefix("/"))).fetchone()
            if row is None and all(ch in "0123456789abcdef" for ch in ref):
                rows = self.db.execute("SELECT * FROM containers WHERE id LIKE ?",
                                       (ref + "%",)).fetchall()
                if len(rows) > 1:
                    raise InvalidArgument(f"multiple containers found with provided prefix: {ref}")
                row = rows[0] if rows else None
        if row is None:
            raise NoSuchContainer(ref)
        return self._from_row(row)

    def names(self) -> set[str]:
        with self.lock:
            return {r[0] for r in self.db.execute("SELECT name FROM containers")}

    # -- exec instances: kept so `exec inspect` works after the fact --

    def add_exec(self, exec_id: str, container_id: str, config: dict[str, Any],
                 state: dict[str, Any]) -> None:
        with self.lock:
            self.db.execute("INSERT OR REPLACE INTO execs VALUES (?, ?, ?, ?)",
                            (exec_id, container_id, json.dumps(config), json.dumps(state)))

    def get_exec(self, exec_id: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
        with self.lock:
            row = self.db.execute("SELECT * FROM execs WHERE id = ?", (exec_id,)).fetchone()
        if row is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        return row["container_id"], json.loads(row["config"]), json.loads(row["state"])


def unix_created(c: Container) -> int:
    return int(parse_rfc3339(c.created) or time.time())
