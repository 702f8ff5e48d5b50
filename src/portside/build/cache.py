"""The persistent build cache, in SQLite under the portside root.

Two tables: `steps` maps a step's cache key (its parent's key, the instruction after
substitution, the build args and env it sees, the digest of the content it reads) to what it
produced (a layer, or none, and when); `file_hashes_v2` remembers the sha256 of context files
by (path, device, inode, size, mtime, ctime), so a rebuild never re-reads unchanged files.
Cached layers are the blobs already in the content store: a hit reuses them as they are.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from portside import sqlitedb

SCHEMA = """
CREATE TABLE IF NOT EXISTS steps (
    key TEXT PRIMARY KEY,
    result TEXT NOT NULL,
    created REAL NOT NULL,
    used REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS file_hashes_v2 (
    path BLOB PRIMARY KEY,  -- os.fsencode(path): any file name, even one that is not UTF-8
    dev INTEGER, ino INTEGER, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER,
    digest TEXT NOT NULL
);
"""


# The store lease holder under which cached step layers are kept from image GC.
CACHE_HOLDER = "build-cache"


def step_key(parent: str, instruction: str, **inputs: Any) -> str:
    """The cache key of a step: a digest over everything that decides its result."""
    doc = json.dumps({"parent": parent, "instruction": instruction, **inputs}, sort_keys=True)
    return "sha256:" + hashlib.sha256(doc.encode("utf-8", "surrogateescape")).hexdigest()


def stat_tuple(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class BuildCache:
    """Step results and file hashes; one instance per build, closed at the end."""

    def __init__(self, root: Path) -> None:
        Path(root).mkdir(parents=True, exist_ok=True)
        self.db = sqlitedb.connect(Path(root) / "build-cache.db", SCHEMA)
        self._hashes: dict[str, tuple[tuple[int, int, int, int, int], str]] | None = None
        self._new_hashes: dict[str, tuple[tuple[int, int, int, int, int], str]] = {}

    def close(self) -> None:
        self.flush()
        self.db.close()

    # -- steps --

    def lookup(self, key: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT result FROM steps WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        self.db.execute("UPDATE steps SET used = ? WHERE key = ?", (time.time(), key))
        result: dict[str, Any] = json.loads(row[0])
        return result

    def store(self, key: str, result: dict[str, Any]) -> None:
        now = time.time()
        self.db.execute(
            "INSERT OR REPLACE INTO steps VALUES (?, ?, ?, ?)",
            (key, json.dumps(result, sort_keys=True), now, now),
        )

    def forget(self, key: str) -> None:
        self.db.execute("DELETE FROM steps WHERE key = ?", (key,))

    def prune(self) -> int:
        """Drop every cached step and file hash (`builder prune`); returns the steps dropped."""
        return len(self.prune_steps())

    def prune_steps(self) -> list[str]:
        """Drop every cached step and file hash; returns the keys of the steps dropped."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            keys = [str(r[0]) for r in self.db.execute("SELECT key FROM steps")]
            self.db.execute("DELETE FROM steps")
            self.db.execute("DELETE FROM file_hashes_v2")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        self._hashes, self._new_hashes = None, {}
        return keys

    # -- file hashes --

    def known_hash(self, path: str, st: os.stat_result) -> str | None:
        """The digest recorded for `path` if its stat says it has not changed since."""
        if self._hashes is None:
            self.scope("/")
        assert self._hashes is not None
        entry = self._new_hashes.get(path) or self._hashes.get(path)
        if entry and entry[0] == stat_tuple(st):
            # A file modified within the mtime granularity of its hashing could be stale;
            # trust only entries whose mtime is older than the moment they were recorded.
            return entry[1]
        return None

    def scope(self, directory: str) -> None:
        """Load the recorded hashes of files under `directory` (the build context)."""
        low = os.fsencode(directory.rstrip("/") + "/")
        high = low[:-1] + b"0"  # "0" sorts right after "/": the range is the subtree
        self._hashes = {
            os.fsdecode(r[0]): ((r[1], r[2], r[3], r[4], r[5]), r[6])
            for r in self.db.execute(
                "SELECT * FROM file_hashes_v2 WHERE path >= ? AND path < ?", (low, high)
            )
        }

    def remember_hash(self, path: str, st: os.stat_result, digest: str) -> None:
        if time.time_ns() - st.st_mtime_ns < 2_000_000_000:
            return  # racy: the file may still change within the same timestamp tick
        self._new_hashes[path] = (stat_tuple(st), digest)

    def flush(self) -> None:
        if not self._new_hashes:
            return
        rows = [(os.fsencode(p), *s, d) for p, (s, d) in self._new_hashes.items()]
        self.db.execute("BEGIN IMMEDIATE")
        self.db.executemany(
            "INSERT OR REPLACE INTO file_hashes_v2 VALUES (?, ?, ?, ?, ?, ?, ?)", rows
        )
        self.db.execute("COMMIT")
        if self._hashes is not None:
            self._hashes.update(self._new_hashes)
        self._new_hashes.clear()


def cached_steps(root: Path) -> list[dict[str, Any]]:
    """Every cached step: key, result, created and last-used times (for `system df`)."""
    path = Path(root) / "build-cache.db"
    if not path.exists():
        return []
    db = sqlitedb.connect(path, SCHEMA)
    try:
        rows = db.execute("SELECT key, result, created, used FROM steps ORDER BY created")
        return [{"key": r[0], "result": json.loads(r[1]), "created": r[2], "used": r[3]}
                for r in rows]
    finally:
        db.close()
