"""Appending upload data to disk fast: vectored writes, a running hash, early writeback.

Large uploads leave gigabytes of dirty pages for the final fsync to flush; asking the
kernel to start writing back each few MiB as they arrive (`sync_file_range`, Linux) keeps
the final fsync short and page-cache pressure low. Where the call is missing it is skipped.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

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
