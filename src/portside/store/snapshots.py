"""Layer snapshots: each layer unpacked once into a directory keyed by its diff_id.

Snapshots are shared by every image and container that uses the layer; they are the
lower directories of a container's overlayfs root, so whiteouts are kept in overlayfs'
form (see `portside.store.unpack`). Lifecycle: `prepare` unpacks a layer blob into a
private staging directory under the snapshots root, checks that the uncompressed stream
hashes to the expected diff_id, flushes it to disk, and renames it to `<hex>/`; only then
is it recorded in the `snapshots` table. A snapshot directory therefore appears only once
it is complete and verified, and two processes preparing the same layer at once both end
with the one snapshot (the loser of the rename discards its staging directory).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import shutil
import sqlite3
import stat
import tempfile
import time
from pathlib import Path

from portside.errors import DigestMismatch
from portside.oci import digest as digests
from portside.oci.model import Descriptor
from portside.store.content import ContentStore, fsync_dir
from portside.store.unpack import Unpacked, UnpackPolicy, unpack

STAGING_PREFIX = ".staging-"
TRASH_PREFIX = ".trash-"
STALE_AFTER = 24 * 3600  # seconds after which a staging/trash dir is a crash's leftover


class SnapshotStore:
    """Snapshots under `root/<diff_id hex>/fs`, recorded (diff_id, size, created) in SQLite."""

    def __init__(
        self,
        root: Path,
        db: sqlite3.Connection,
        content: ContentStore,
        policy: UnpackPolicy | None = None,
        sync: bool = True,
    ) -> None:
        self.root = Path(root)
        self.db = db
        self.content = content
        self.policy = policy
        self.sync = sync
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

    def prepare(self, layer: Descriptor, diff_id: str) -> Path:
        """The snapshot of `layer` (whose uncompressed digest must be `diff_id`), unpacked
        now if it is not there yet. Idempotent and safe against concurrent callers.

        Raises UnsafeLayer / LayerError / CorruptLayer for a bad layer, DigestMismatch when
        it does not hash to `diff_id`, BlobUnknown when the blob is missing; in each case
        nothing is left behind.
        """
        digests.validate(diff_id, f"diff_id of layer {layer.digest}")
        final = self.root / digests.encoded(diff_id)
        if (final / "fs").is_dir():
            self._record(diff_id, final / "fs")
            return final / "fs"
        self.clean_staging()
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.root))
        try:
            with self.content.open(layer.digest) as blob:
                result = unpack(
                    blob,
                    staging / "fs",
                    media_type=layer.media_type,
                    layer=layer.digest,
                    policy=self.policy,
                )
            if result.diff_id != diff_id:
                raise DigestMismatch(diff_id, result.diff_id, f"layer {layer.digest} (diff_id)")
            if self.sync:
                _syncfs(staging)
            try:
                os.rename(staging, final)
            except OSError as exc:
                # Someone else finished the same snapshot first: theirs is as good as ours.
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                _remove_tree(staging)
            else:
                fsync_dir(self.root)
        except BaseException:
            _remove_tree(staging)
            raise
        self._record(diff_id, final / "fs", result)
        return final / "fs"

    def _record(self, diff_id: str, fs: Path, result: Unpacked | None = None) -> None:
        """Make sure the snapshot on disk has its row (a crash may have left it without)."""
        if self.db.execute("SELECT 1 FROM snapshots WHERE diff_id = ?", (diff_id,)).fetchone():
            return
        size = result.size if result else _disk_size(fs)
        self.db.execute(
            "INSERT OR IGNORE INTO snapshots VALUES (?, ?, ?)", (diff_id, size, time.time())
        )

    def remove(self, diff_id: str) -> int:
        """Delete a snapshot; returns the bytes it used."""
        row = self.db.execute("SELECT size FROM snapshots WHERE diff_id = ?", (diff_id,)).fetchone()
        target = self.root / digests.encoded(diff_id)
        if target.exists():
            # Rename first so a half-deleted snapshot is never mistaken for a whole one.
            trash = Path(tempfile.mkdtemp(prefix=TRASH_PREFIX, dir=self.root))
            os.rename(target, trash / target.name)
            _remove_tree(trash)
        self.db.execute("DELETE FROM snapshots WHERE diff_id = ?", (diff_id,))
        with contextlib.suppress(Exception):
            return int(row[0]) if row else 0
        return 0

    def clean_staging(self, older_than: float = STALE_AFTER) -> None:
        """Remove staging and trash directories a crash left behind (older than `older_than`)."""
        limit = time.time() - older_than
        with os.scandir(self.root) as entries:
            for entry in entries:
                if not entry.name.startswith((STAGING_PREFIX, TRASH_PREFIX)):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat(follow_symlinks=False).st_mtime <= limit:
                        _remove_tree(Path(entry.path))


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _disk_size(fs: Path) -> int:
    """Bytes of file content under `fs`, each inode once (hardlinks share theirs)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _dirs, files in os.walk(fs):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


_libc: ctypes.CDLL | None = None


def _syncfs(path: Path) -> None:
    """Flush the filesystem holding `path` (one syncfs(2), not one fsync per file) so a
    crash after the rename can never leave a snapshot with missing data."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)
