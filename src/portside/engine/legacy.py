"""The engine's records from before the state backend: `<root>/engine.db`, moved once.

That SQLite file had three tables: `containers` (one row per container, Docker's shapes as
JSON columns), `execs` and `volumes`. `migrate` turns each row into the record the stores
write today (`containers/<id>` with its `names/<name>`, `execs/<id>`, `volumes/<name>`)
and hands them to `portside.state.migrate.import_once`, which copies them in one
transaction and renames the file to `engine.db.migrated`.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from portside.engine.state import (
    CONTAINERS,
    EXECS,
    NAMES,
    Container,
    container_doc,
    exec_doc,
)
from portside.engine.volumes import VOLUMES, volume_doc
from portside.state.backend import Put, StateBackend
from portside.state.migrate import Kind, import_once, read_table

FILENAME = "engine.db"


def migrate(root: Path, backend: StateBackend) -> int:
    """Move the records of `<root>/engine.db` into `backend`, if that file is there."""
    return import_once(backend, Path(root) / FILENAME, _read)


def _read(conn: sqlite3.Connection) -> list[Kind]:
    containers = Kind(CONTAINERS)
    for r in read_table(conn, "containers", "created"):
        c = Container(r["id"], r["name"], r["created"], r["image"], r["image_id"],
                      json.loads(r["config"]), json.loads(r["host_config"]),
                      json.loads(r["state"]), json.loads(r["mounts"]), r["restart_count"],
                      r["runtime"])
        containers.puts += [Put(CONTAINERS + c.id, container_doc(c)),
                            Put(NAMES + c.name, c.id.encode())]
    execs = Kind(EXECS, [
        Put(EXECS + r["id"], exec_doc(r["container_id"], json.loads(r["config"]),
                                      json.loads(r["state"])))
        for r in read_table(conn, "execs")])
    volumes = Kind(VOLUMES, [
        Put(VOLUMES + r["name"], volume_doc(r["created"], json.loads(r["labels"]),
                                            bool(r["anonymous"])))
        for r in read_table(conn, "volumes")])
    return [containers, execs, volumes]
