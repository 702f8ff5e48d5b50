"""Layer snapshots: each layer unpacked once into a directory keyed by its diff_id.

Snapshots are shared by every image and container that uses the layer; they are the
lower directories of a container's overlayfs root. A snapshot directory appears only
once it is complete: layers are unpacked into a private staging directory and renamed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from pathlib import Path

from portside.oci import digest as digests
from portside.store.content import ContentStore


class SnapshotStore:
    def __init__(self, root: Path, db: sqlite3.Connection, content: ContentStore) -> None:
        self.root = Path(root)
        self.db = db
        self.content = content
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def path(self, diff_id: str) -> Path:
        """The directory holding the unpacked layer (its `fs` below the snapshot's own dir)."""
        return self.root / digests.encoded(diff_id) / "fs"

    def exists(self, diff_id: str) -> bool:
        return self.path(diff_id).is_dir()

    def ids(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT diff_id FROM snapshots")]

    def total_size(self) -> int:
        return int(self.db.execute("SELECT COALESCE(SUM(size), 0) FROM snapshots").fetchone()[0])

    def remove(self, diff_id: str) -> int:
        """Delete a snapshot; returns the bytes it used."""
        row = self.db.execute("SELECT size FROM snapshots WHERE diff_id = ?", (diff_id,)).fetchone()
        target = self.root / digests.encoded(diff_id)
        if target.exists():
            # Rename first so a half-deleted snapshot is never mistaken for a whole one.
            trash = self.root / f".trash-{os.getpid()}-{target.name}"
            os.rename(target, trash)
            shutil.rmtree(trash, ignore_errors=True)
        self.db.execute("DELETE FROM snapshots WHERE diff_id = ?", (diff_id,))
        with contextlib.suppress(Exception):
            return int(row[0]) if row else 0
        return 0
