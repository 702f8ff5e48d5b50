"""Keep rotated log generations (docker's `max-file`) while conmon rotates at `max-size`.

conmon rotates a k8s-file log by writing a fresh file and renaming it over the old name,
dropping what was there. A thread watches the log directories with inotify and, whenever
a new log file appears under a watched name, links the live file as `<log>.1` (shifting
older ones up) so the generation conmon is about to replace survives it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import struct
import threading
from pathlib import Path

from portside.runtime.logs import keep_generation
from portside.runtime.mounts import libc

IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_CLOEXEC = os.O_CLOEXEC
_EVENT = struct.Struct("iIII")


class LogKeeper:
    """One inotify thread for every log with max_file > 1 of a Runtime."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logs: dict[Path, int] = {}  # log path -> max_file
        self._dirs: dict[int, Path] = {}  # watch descriptor -> dir
        self._wds: dict[Path, int] = {}
        self._fd = libc().inotify_init1(IN_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="portside-logkeeper", daemon=True)
        self._thread.start()

    def watch(self, log: Path, max_file: int) -> None:
        if max_file <= 1:
            return
        log = Path(log)
        with self._lock:
            self._logs[log] = max_file
            d = log.parent
            if d not in self._wds:
                wd = libc().inotify_add_watch(self._fd, str(d).encode(), IN_MOVED_TO | IN_CREATE)
                if wd < 0:
                    raise OSError(ctypes.get_errno(), "inotify_add_watch", str(d))
                self._wds[d] = wd
                self._dirs[wd] = d
        keep_generation(log, max_file)

    def unwatch(self, log: Path) -> None:
        log = Path(log)
        with self._lock:
            self._logs.pop(log, None)
            d = log.parent
            if d in self._wds and not any(p.parent == d for p in self._logs):
                wd = self._wds.pop(d)
                self._dirs.pop(wd, None)
                libc().inotify_rm_watch(self._fd, wd)

    def close(self) -> None:
        """Stop the thread and release the inotify fd."""
        os.write(self._wake_w, b"x")
        self._thread.join(5)
        for fd in (self._fd, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _run(self) -> None:
        while True:
            ready, _, _ = select.select([self._fd, self._wake_r], [], [])
            if self._wake_r in ready:
                return
            try:
                buf = os.read(self._fd, 65536)
            except OSError:
                return
            pos = 0
            while pos + _EVENT.size <= len(buf):
                wd, _mask, _cookie, length = _EVENT.unpack_from(buf, pos)
                name = buf[pos + _EVENT.size : pos + _EVENT.size + length].rstrip(b"\0")
                pos += _EVENT.size + length
                with self._lock:
                    d = self._dirs.get(wd)
                    log = d / name.decode(errors="replace") if d is not None else None
                    max_file = self._logs.get(log) if log is not None else None
                if log is not None and max_file:
                    with contextlib.suppress(OSError):
                        keep_generation(log, max_file)
