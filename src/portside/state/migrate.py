"""One-time import of records from an old SQLite file into a state backend.

The engine and the network layer kept their records in SQLite files of their own
(`engine.db`, `network/network.db`) before they moved onto the state backend. At open, each
reads its old file (if there is one) into `Kind`s of records and calls `import_once`: the
kinds the backend has no records of yet are copied in one transaction, created only if
absent (so two processes opening at once copy them once), and the old file is renamed aside
(`<name>.migrated`, with its WAL), so it is never read again and nothing is lost.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from portside.state.backend import Compare, Put, StateBackend

log = logging.getLogger(__name__)

SUFFIX = ".migrated"


@dataclass
class Kind:
    """The records of one kind: copied only when no key under `prefix` exists yet."""

    prefix: str
    puts: list[Put] = field(default_factory=list)


def import_once(backend: StateBackend, old: Path,
                read: Callable[[sqlite3.Connection], list[Kind]]) -> int:
    """Copy the records `read` makes of the old file `old` into `backend`, then rename the
    file aside; returns how many keys were written (0 when there was nothing to do).

    A kind the backend already has is left out (its old rows stay in the renamed file).
    A missing file costs one `stat`."""
    if not old.exists():
        return 0
    # read-write, so that closing it checkpoints its WAL into the file that is renamed
    conn = sqlite3.connect(f"file:{old}?mode=rw", uri=True, isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        kinds = read(conn)
    finally:
        conn.close()
    puts: list[Put] = []
    for kind in kinds:
        if not kind.puts:
            continue
        if backend.range(kind.prefix)[0]:
            log.warning("%s: %s records are in the state backend already; the old ones are "
                        "kept in %s%s", old, kind.prefix.rstrip("/"), old.name, SUFFIX)
            continue
        puts.extend(kind.puts)
    written = 0
    if puts:
        result = backend.txn([Compare.absent(p.key) for p in puts], puts)
        if result.succeeded:
            written = len(puts)
            log.info("%s: %d records moved into the state backend", old, written)
        else:  # another process got there first: its copy is the same rows
            log.info("%s: already moved into the state backend by another process", old)
    _rename_aside(old)
    return written


def read_table(conn: sqlite3.Connection, table: str, order: str = "rowid"
               ) -> list[sqlite3.Row]:
    """Every row of `table` by `order`, or none when the old file never had the table."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                    (table,)).fetchone() is None:
        return []
    return conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()


def _rename_aside(old: Path) -> None:
    """`old` (with its -wal and -shm files) to `<old>.migrated`, never over an earlier one."""
    target = old.with_name(old.name + SUFFIX)
    if target.exists():
        target = old.with_name(f"{old.name}{SUFFIX}-{time.strftime('%Y%m%dT%H%M%S')}")
    for extra in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.rename(f"{old}{extra}", f"{target}{extra}")
    with contextlib.suppress(FileNotFoundError):  # another process renamed it already
        os.rename(old, target)
