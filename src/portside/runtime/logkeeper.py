"""Size-based log rotation (docker's `max-size` / `max-file`), race-free with conmon.

conmon's own `--log-size-max` rotation writes a fresh file and renames it over the old
name, dropping the old generation; fast output rotates many times before anyone could
save a generation. So conmon never rotates by itself here: one inotify thread watches
the log directories and, when a log passes `max-size`, shifts `<log>.1..` up, renames the
live file to `<log>.1` (conmon keeps writing into it) and asks conmon to reopen its log
(a "2 0 0" line on its ctl fifo), which then starts a new `<log>`. Nothing written is lost
between the two steps. A file may pass `max-size` by what arrives while we react; one that
passed it by more than a quarter (a burst) is cut into max-size generations, dropping what
max-file has no room for. While no daemon runs, logs grow until the next one re-adopts
the container.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from portside.runtime.mounts import libc

IN_MODIFY = 0x2
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_CLOEXEC = os.O_CLOEXEC
_EVENT = struct.Struct("iIII")
REOPEN = b"2 0 0\n"  # conmon's ctl message: reopen the log file


@dataclass
class _Log:
    max_size: int
    max_file: int
    ctl: Path  # conmon's ctl fifo


def rotate(path: Path, max_file: int) -> None:
    """Shift `<path>.1..` up one, dropping those beyond `max_file - 1`, and rename `path`
    to `<path>.1` (with max_file 1 the old file is dropped once conmon has reopened)."""
    keep = max(max_file - 1, 1)
    Path(f"{path}.{keep}").unlink(missing_ok=True)
    for n in range(keep - 1, 0, -1):
        with contextlib.suppress(FileNotFoundError):
            os.replace(f"{path}.{n}", f"{path}.{n + 1}")
    os.replace(path, f"{path}.1")


def _name(log: Path, index: int) -> Path:
    return log if index == 0 else Path(f"{log}.{index}")


def _chunks(data: bytes, max_size: int, count: int) -> tuple[list[bytes], bool]:
    """Up to `count` pieces of at most max_size bytes (whole lines; a longer line alone),
    newest first, and whether older data was left out."""
    out: list[bytes] = []
    end = len(data)
    while end > 0 and len(out) < count:
        start = max(0, end - max_size)
        if start > 0:
            nl = data.find(b"\n", start - 1, end - 1)
            start = nl + 1 if nl >= 0 else data.rfind(b"\n", 0, end - 1) + 1
        out.append(data[start:end])
        end = start
    return out, end > 0


def split(log: Path, index: int, max_size: int, max_file: int) -> None:
    """Cut the finished generation `index` (0: the live name) into max-size generations
    `index`, `index + 1`... shifting older ones up; what max-file has no room for goes,
    and with it everything older (a gap otherwise)."""
    src = _name(log, index)
    try:
        data = src.read_bytes()
    except FileNotFoundError:
        return
    if len(data) <= max_size + max_size // 4:
        return  # overshot by what arrived while we reacted: kept whole
    last = max(max_file - 1, 0)
    chunks, cut = _chunks(data, max_size, last - index + 1)
    n = len(chunks)
    for k in range(last, index, -1):  # the older generations
        old = _name(log, k)
        if cut or k + n - 1 > last:
            old.unlink(missing_ok=True)
        elif n > 1:
            with contextlib.suppress(FileNotFoundError):
                os.replace(old, _name(log, k + n - 1))
    for i in range(n - 1, -1, -1):  # the oldest piece first, the source name last
        tmp = log.with_name(f"{log.name}.split")
        tmp.write_bytes(chunks[i])
        os.replace(tmp, _name(log, index + i))


def open_ctl(ctl: Path) -> int | None:
    """conmon's ctl fifo for writing; None when conmon is gone (no reader)."""
    try:
        return os.open(ctl, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:  # ENXIO: no reader, conmon exited
        return None


def _appears(path: Path, ino: int, timeout: float = 2.0) -> bool:
    """Wait for conmon's new file at `path` (another inode than `ino`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino != ino:
                return True
        time.sleep(0.001)
    return False


def _write(fd: int, data: bytes) -> bool:
    try:
        return os.write(fd, data) == len(data)
    except OSError:
        return False


class LogKeeper:
    """One inotify thread rotating every log with a max-size of a Runtime."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logs: dict[Path, _Log] = {}
        self._dirs: dict[int, Path] = {}  # watch descriptor -> dir
        self._wds: dict[Path, int] = {}
        self._fd = libc().inotify_init1(IN_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="portside-logkeeper", daemon=True)
        self._thread.start()

    def watch(self, log: Path, max_size: int, max_file: int, ctl: Path) -> None:
        log = Path(log)
        with self._lock:
            self._logs[log] = _Log(max_size, max_file, Path(ctl))
            d = log.parent
            if d not in self._wds:
                wd = libc().inotify_add_watch(self._fd, str(d).encode(),
                                              IN_MODIFY | IN_MOVED_TO | IN_CREATE)
                if wd < 0:
                    raise OSError(ctypes.get_errno(), "inotify_add_watch", str(d))
                self._wds[d] = wd
                self._dirs[wd] = d
        self._check(log)  # a re-adopted container may have grown meanwhile

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

    def _check(self, log: Path) -> None:
        with self._lock:
            conf = self._logs.get(log)
        if conf is None:
            return
        try:
            st = os.stat(log)
        except FileNotFoundError:
            return  # between our rename and conmon's new file
        if st.st_size < conf.max_size:
            return
        fd = open_ctl(conf.ctl)
        if fd is not None:
            try:
                rotate(log, conf.max_file)
                reopened = _write(fd, REOPEN) and _appears(log, st.st_ino)
            finally:
                os.close(fd)
            if reopened:
                # conmon writes the new file now: the old one is a finished generation,
                # in max-size pieces (a burst can pass max-size before we see it).
                if conf.max_file <= 1:
                    Path(f"{log}.1").unlink(missing_ok=True)
                else:
                    split(log, 1, conf.max_size, conf.max_file)
                return
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{log}.1", log)  # conmon went away meanwhile: still the live file
        # Nobody writes any more (the container exited): max-file pieces of max-size.
        split(log, 0, conf.max_size, conf.max_file)

    def _run(self) -> None:
        while True:
            ready, _, _ = select.select([self._fd, self._wake_r], [], [])
            if self._wake_r in ready:
                return
            try:
                buf = os.read(self._fd, 65536)
            except OSError:
                return
            seen: set[Path] = set()
            pos = 0
            while pos + _EVENT.size <= len(buf):
                wd, _mask, _cookie, length = _EVENT.unpack_from(buf, pos)
                name = buf[pos + _EVENT.size : pos + _EVENT.size + length].rstrip(b"\0")
                pos += _EVENT.size + length
                with self._lock:
                    d = self._dirs.get(wd)
                if d is not None:
                    seen.add(d / name.decode(errors="replace"))
            for log in seen:
                with contextlib.suppress(OSError):
                    self._check(log)
