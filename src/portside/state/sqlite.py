"""The embedded SQLite state backend: the single-host default, one file under the root.

The file holds four tables: `meta` (the current revision and the compacted one), `kv` (the
current pairs, keys as UTF-8 bytes so prefix ranges are index ranges), `history` (one row
per event, keyed by revision and position in its transaction, with the previous pair, so a
watch can start at any kept revision, also after a restart) and `leases` (TTL and expiry as
wall-clock time, so they outlive the process that granted them). Every write is one
`BEGIN IMMEDIATE` transaction that reads the revision, applies the ops and appends the
history, so several processes may open the same file (WAL mode; SQLite's lock orders them)
and compare-and-swap stays atomic across them.

Commits do not copy the WAL back into the database file (SQLite's automatic checkpoint,
which syncs both files, would stall whichever write happened to trigger it, a container's
start, say): a checkpointer thread with its own connection does it after every
`CHECKPOINT_EVERY` commits, and SQLite's own at `AUTO_CHECKPOINT` pages is the backstop.
Durability is SQLite's WAL with `synchronous=NORMAL` either way.

Leases expire lazily and by a reaper: each call first expires leases whose time is up
(each such lease's deletes are one revision), and a daemon thread (started with the first
`grant` or `watch`, or when the file already has leases) does the same at each deadline and
at least every `reap_interval` seconds, for leases granted by other processes. Watches see
this process's writes at once and other processes' within `poll_interval` seconds.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from portside import sqlitedb
from portside.state.apply import apply_txn, delete_rows
from portside.state.backend import (
    BackendClosed,
    Compacted,
    Compare,
    Event,
    EventType,
    InvalidRevision,
    KeyValue,
    LeaseNotFound,
    Op,
    StateBackend,
    TxnResult,
    check_key,
    check_prefix,
    check_start,
    check_ttl,
    deleted,
)
from portside.state.embedded import EmbeddedBackend
from portside.state.watch import HistoryWatch

log = logging.getLogger(__name__)

WINDOW = 1000  # revisions a watch reads at a time
CHECKPOINT_EVERY = 64  # write commits between two checkpoints by the checkpointer thread
AUTO_CHECKPOINT = 20000  # WAL pages at which a commit checkpoints itself (the backstop)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('revision', 0), ('compacted', 0);
CREATE TABLE IF NOT EXISTS kv (
    key BLOB PRIMARY KEY, value BLOB NOT NULL, create_revision INTEGER NOT NULL,
    mod_revision INTEGER NOT NULL, version INTEGER NOT NULL, lease INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_by_lease ON kv(lease) WHERE lease IS NOT NULL;
CREATE TABLE IF NOT EXISTS history (
    revision INTEGER NOT NULL, sub INTEGER NOT NULL, type TEXT NOT NULL, key BLOB NOT NULL,
    value BLOB, create_revision INTEGER, version INTEGER, lease INTEGER,
    prev_value BLOB, prev_create INTEGER, prev_mod INTEGER, prev_version INTEGER,
    prev_lease INTEGER,
    PRIMARY KEY (revision, sub)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ttl REAL NOT NULL, expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS leases_by_expiry ON leases(expires);
"""

KV_COLUMNS = "key, value, create_revision, mod_revision, version, lease"


def _bounds(prefix: str) -> tuple[str, list[bytes]]:
    """A WHERE clause (on `key`) and its arguments for the keys starting with `prefix`.
    UTF-8 never has a 0xff byte, so bumping the last byte gives the exclusive end."""
    if not prefix:
        return "1", []
    start = prefix.encode()
    return "key >= ? AND key < ?", [start, start[:-1] + bytes([start[-1] + 1])]


def _kv(row: sqlite3.Row) -> KeyValue:
    return KeyValue(bytes(row["key"]).decode(), bytes(row["value"]), row["create_revision"],
                    row["mod_revision"], row["version"], row["lease"])


def _event(row: sqlite3.Row) -> Event:
    key = bytes(row["key"]).decode()
    rev = row["revision"]
    prev = None
    if row["prev_mod"] is not None:
        prev = KeyValue(key, bytes(row["prev_value"]), row["prev_create"], row["prev_mod"],
                        row["prev_version"], row["prev_lease"])
    if row["type"] == EventType.PUT.value:
        kv = KeyValue(key, bytes(row["value"]), row["create_revision"], rev, row["version"],
                      row["lease"])
        return Event(EventType.PUT, kv, prev, rev)
    return Event(EventType.DELETE, deleted(key, rev), prev, rev)


class _Tables:
    """`apply.Tables` over the connection, inside the caller's transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def row(self, key: str) -> KeyValue | None:
        r = self.conn.execute(f"SELECT {KV_COLUMNS} FROM kv WHERE key = ?",
                              (key.encode(),)).fetchone()
        return _kv(r) if r else None

    def rows(self, prefix: str) -> list[KeyValue]:
        where, args = _bounds(prefix)
        return [_kv(r) for r in self.conn.execute(
            f"SELECT {KV_COLUMNS} FROM kv WHERE {where} ORDER BY key", args)]

    def write(self, kv: KeyValue, prev: KeyValue | None) -> None:
        self.conn.execute(f"INSERT OR REPLACE INTO kv ({KV_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                          (kv.key.encode(), kv.value, kv.create_revision, kv.mod_revision,
                           kv.version, kv.lease))

    def remove(self, kv: KeyValue) -> None:
        self.conn.execute("DELETE FROM kv WHERE key = ?", (kv.key.encode(),))

    def lease_exists(self, lease: int) -> bool:
        return self.conn.execute("SELECT 1 FROM leases WHERE id = ?",
                                 (lease,)).fetchone() is not None

    def lease_keys(self, lease: int) -> list[KeyValue]:
        return [_kv(r) for r in self.conn.execute(
            f"SELECT {KV_COLUMNS} FROM kv WHERE lease = ? ORDER BY key", (lease,))]


class SqliteBackend(EmbeddedBackend):
    """A `StateBackend` in one SQLite file; thread-safe, and safe for several processes."""

    def __init__(self, path: Path, poll_interval: float = 0.1,
                 reap_interval: float = 0.5) -> None:
        self.path = Path(path)
        super().__init__(f"state-leases {self.path.name}", reap_interval)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.poll_interval: float | None = poll_interval
        self._conn = sqlitedb.connect(self.path, SCHEMA)
        self._conn.execute(f"PRAGMA wal_autocheckpoint={AUTO_CHECKPOINT}")
        self._checkpointer = _Checkpointer(self.path)
        self._commits = 0
        self._rev = 0  # the revision, inside a write transaction (read at its start)
        self._tables = _Tables(self._conn)
        self._pending = False  # the open write transaction recorded events: notify watchers
        if self._conn.execute("SELECT 1 FROM leases LIMIT 1").fetchone():
            self._reaper.start()

    # -- plumbing --

    def _check_open(self) -> None:
        if self._closed:
            raise BackendClosed(str(self.path))

    def _meta(self, name: str) -> int:
        value: int = self._conn.execute("SELECT value FROM meta WHERE name = ?",
                                        (name,)).fetchone()[0]
        return value

    @contextlib.contextmanager
    def _read(self, snapshot: bool = True) -> Iterator[sqlite3.Connection]:
        """Reads after expiring due leases; several SELECTs see one snapshot when
        `snapshot` (a single SELECT is one anyway)."""
        with self._lock:
            self._check_open()
            if self._conn.execute("SELECT 1 FROM leases WHERE expires <= ? LIMIT 1",
                                  (time.time(),)).fetchone():
                with self._write():
                    pass
            if not snapshot:
                yield self._conn
                return
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                self._conn.execute("COMMIT")

    @contextlib.contextmanager
    def _write(self) -> Iterator[int]:
        """A write transaction, after expiring due leases; yields the revision its writes get.
        Callers record their events with `_record`; the revision advances if there are any."""
        with self._lock:
            self._check_open()
            with sqlitedb.transaction(self._conn):
                self._rev, soonest = self._conn.execute(
                    "SELECT (SELECT value FROM meta WHERE name = 'revision'),"
                    " (SELECT min(expires) FROM leases)").fetchone()
                now = time.time()
                if soonest is not None and soonest <= now:
                    self._expire(now)
                yield self._rev + 1
            if self._pending:
                self._pending = False
                self._commits += 1
                if self._commits % CHECKPOINT_EVERY == 0:
                    self._checkpointer.poke()
                self.notifier.notify()

    def _record(self, events: list[Event]) -> int:
        """Append `events` (all of one revision) to the history and advance the revision."""
        if not events:
            return self._rev
        revision = self._rev + 1
        rows = []
        for sub, e in enumerate(events):
            p = e.prev_kv
            rows.append((revision, sub, e.type.value, e.kv.key.encode(),
                         e.kv.value if e.type is EventType.PUT else None,
                         e.kv.create_revision, e.kv.version, e.kv.lease,
                         p.value if p else None, p.create_revision if p else None,
                         p.mod_revision if p else None, p.version if p else None,
                         p.lease if p else None))
        insert = "INSERT INTO history VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
        if len(rows) == 1:
            self._conn.execute(insert, rows[0])
        else:
            self._conn.executemany(insert, rows)
        self._conn.execute("UPDATE meta SET value = ? WHERE name = 'revision'", (revision,))
        self._rev = revision
        self._pending = True
        return revision

    def _expire(self, now: float) -> None:
        for (lease,) in self._conn.execute(
                "SELECT id FROM leases WHERE expires <= ? ORDER BY expires", (now,)).fetchall():
            self._revoke_in_txn(lease)

    def _revoke_in_txn(self, lease: int) -> int:
        rows = self._tables.lease_keys(lease)
        self._conn.execute("DELETE FROM leases WHERE id = ?", (lease,))
        return self._record(delete_rows(self._tables, rows, self._rev + 1))

    def _reap(self) -> float | None:
        with self._lock:
            self._check_open()
            now = time.time()
            if self._conn.execute("SELECT 1 FROM leases WHERE expires <= ? LIMIT 1",
                                  (now,)).fetchone():
                with self._write():
                    pass
            (soonest,) = self._conn.execute("SELECT min(expires) FROM leases").fetchone()
            return None if soonest is None else float(soonest) - time.time()

    # -- reads --

    def revision(self) -> int:
        with self._read():
            return self._meta("revision")

    def get(self, key: str) -> KeyValue | None:
        check_key(key)
        with self._read(snapshot=False):
            return self._tables.row(key)

    def range(self, prefix: str) -> tuple[list[KeyValue], int]:
        check_prefix(prefix)
        with self._read():
            return self._tables.rows(prefix), self._meta("revision")

    # -- writes --

    def txn(self, compares: Sequence[Compare], success: Sequence[Op],
            failure: Sequence[Op] = ()) -> TxnResult:
        with self._write() as revision:
            ok, responses, events = apply_txn(self._tables, revision, compares, success,
                                              failure)
            return TxnResult(ok, self._record(events), tuple(responses))

    # -- watch and history --

    def watch(self, prefix: str, start_revision: int | None = None) -> HistoryWatch:
        check_prefix(prefix)
        check_start(start_revision)
        with self._read():
            start = self._meta("revision") + 1 if start_revision is None else start_revision
            compacted = self._meta("compacted")
            if start < compacted:
                raise Compacted(start, compacted)
            w = HistoryWatch(self, prefix, start)
            self._watches.add(w)
        self._reaper.start()  # so lease expiries reach the watcher even if nobody writes
        return w

    def read_history(self, prefix: str, start: int) -> tuple[list[Event], int]:
        with self._lock:
            self._check_open()
            self._conn.execute("BEGIN")
            try:
                compacted = self._meta("compacted")
                if start < compacted:
                    raise Compacted(start, compacted)
                hi = min(self._meta("revision"), start + WINDOW - 1)
                if hi < start:
                    return [], start
                where, args = _bounds(prefix)
                rows = self._conn.execute(
                    f"SELECT * FROM history WHERE revision BETWEEN ? AND ? AND {where} "
                    "ORDER BY revision, sub", [start, hi, *args]).fetchall()
            finally:
                self._conn.execute("COMMIT")
        return [_event(r) for r in rows], hi + 1

    def compact(self, revision: int) -> None:
        with self._write():
            current = self._rev
            if revision > current:
                raise InvalidRevision(revision, f"is in the future (the store is at {current})")
            if revision > self._meta("compacted"):
                self._conn.execute("DELETE FROM history WHERE revision < ?", (revision,))
                self._conn.execute("UPDATE meta SET value = ? WHERE name = 'compacted'",
                                   (revision,))
                self._pending = True  # watchers behind it learn they are compacted

    def compacted_revision(self) -> int:
        with self._read():
            return self._meta("compacted")

    # -- leases --

    def grant(self, ttl: float) -> int:
        check_ttl(ttl)
        with self._write():
            cur = self._conn.execute("INSERT INTO leases (ttl, expires) VALUES (?, ?)",
                                     (float(ttl), time.time() + ttl))
            lease = cur.lastrowid
        assert lease is not None
        self._reaper.start()
        self._reaper.poke()
        return lease

    def keepalive(self, lease: int) -> float:
        with self._write():
            row = self._conn.execute("SELECT ttl FROM leases WHERE id = ?", (lease,)).fetchone()
            if row is None:
                raise LeaseNotFound(lease)
            self._conn.execute("UPDATE leases SET expires = ? WHERE id = ?",
                               (time.time() + row["ttl"], lease))
            ttl: float = row["ttl"]
        self._reaper.poke()
        return ttl

    def revoke(self, lease: int) -> int:
        with self._write():
            if not self._tables.lease_exists(lease):
                raise LeaseNotFound(lease)
            return self._revoke_in_txn(lease)

    def _release(self) -> None:
        self._checkpointer.stop()
        with self._lock:
            self._conn.close()


class _Checkpointer:
    """A daemon thread that copies the WAL back into the database file when poked, on a
    connection of its own, so no write waits for it (a PASSIVE checkpoint never blocks
    writers or readers; what it cannot copy yet is copied next time)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._cond = threading.Condition()
        self._poked = False
        self._stopped = False
        self._thread: threading.Thread | None = None

    def poke(self) -> None:
        with self._cond:
            if self._stopped:
                return
            self._poked = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name=f"state-checkpoint {self._path.name}")
                self._thread.start()
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=10)

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, timeout=0, isolation_level=None,
                               check_same_thread=False)
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(lambda: self._poked or self._stopped)
                    if self._stopped:
                        return
                    self._poked = False
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:  # busy (another checkpoint): the next poke retries
                    log.debug("checkpoint of %s skipped", self._path, exc_info=True)
        finally:
            conn.close()


if TYPE_CHECKING:
    _conforms: type[StateBackend] = SqliteBackend
