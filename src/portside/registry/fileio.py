"""Appending upload data to disk fast: vectored writes, a running hash, early writeback.

Large uploads leave gigabytes of dirty pages for the final fsync to flush; asking the
kernel to start writing back each few MiB as they arrive (`sync_file_range`, Linux) keeps
the final fsync short and page-cache pressure low. Where the call is missing it is skipped.
"""

from __future__ import annotations

import ctypes
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portside.errors import DigestMismatch, SizeMismatch
from portside.oci import digest as digests
from portside.store.content import ContentStore, fsync_dir

WRITEBACK_EVERY = 8 << 20
_SYNC_FILE_RANGE_WRITE = 2
_sync_file_range: Any = None


def _writeback(fd: int, offset: int, length: int) -> None:
    global _sync_file_range
    if _sync_file_range is None:
        try:
            fn = ctypes.CDLL(None, use_errno=True).sync_file_range
            fn.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
            _sync_file_range = fn
        except (AttributeError, OSError):
            _sync_file_range = False
    if _sync_file_range:
        _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


class AppendFile:
    """An upload's data file opened for appending, with the running hash of its content.

    `state` is the storage's hash record for the upload (`hasher`, `offset`), updated as
    bytes are written; one writer at a time (the handler awaits each batch).
    """

    def __init__(self, path: os.PathLike[str] | str, state: Any) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self.state = state
        self._synced = state.offset

    def write_parts(self, parts: list[bytes]) -> None:
        views = [memoryview(p) for p in parts if p]
        while views:
            written = os.writev(self.fd, views)
            # hash exactly what reached the file, then drop it from the queue
            while written and views:
                head = views[0]
                take = min(written, len(head))
                self.state.hasher.update(head[:take])
                self.state.offset += take
                written -= take
                views[0] = head[take:]
                if not len(views[0]):
                    views.pop(0)
        if self.state.offset - self._synced >= WRITEBACK_EVERY:
            _writeback(self.fd, self._synced, self.state.offset - self._synced)
            self._synced = self.state.offset

    def truncate(self, size: int) -> None:
        os.ftruncate(self.fd, size)
        self.state.offset = -1  # out of step: the next use re-hashes the file

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def publish(content: ContentStore, data: Path, digest: str) -> None:
    """Move a verified file into the content store's blob path (fsynced, atomic rename)."""
    fd = os.open(data, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    target = content.path(digest)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(data, 0o444)
    os.rename(data, target)
    fsync_dir(target.parent)


@dataclass
class _Running:
    hasher: Any
    offset: int = 0


class BlobSink:
    """A download into the content store: written to a private file under `ingest/` with
    early writeback, verified against its digest and size, then published. Nothing is
    visible before `commit`; leaving the `with` block without it removes the file."""

    def __init__(self, content: ContentStore, digest: str, size: int) -> None:
        self.content = content
        self.digest = digests.validate(digest)
        self.expected_size = size
        fd, name = tempfile.mkstemp(dir=content.ingest_dir, prefix="pull-")
        os.close(fd)
        self.path = Path(name)
        self.state = _Running(digests.hasher(digest))
        self.file = AppendFile(self.path, self.state)
        self.committed = False

    @property
    def size(self) -> int:
        return int(self.state.offset)

    def write(self, data: bytes) -> None:
        if self.size + len(data) > self.expected_size:
            raise SizeMismatch(self.expected_size, self.size + len(data), self.digest)
        self.file.write_parts([data])

    def commit(self) -> None:
        self.file.close()
        actual = f"{self.digest.partition(':')[0]}:{self.state.hasher.hexdigest()}"
        if actual != self.digest:
            raise DigestMismatch(self.digest, actual)
        if self.size != self.expected_size:
            raise SizeMismatch(self.expected_size, self.size, self.digest)
        publish(self.content, self.path, self.digest)
        self.committed = True

    def __enter__(self) -> BlobSink:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.file.close()
        if not self.committed:
            self.path.unlink(missing_ok=True)
