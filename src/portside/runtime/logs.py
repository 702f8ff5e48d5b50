"""Read conmon's k8s-file logs: `<RFC3339Nano> stdout|stderr F|P <bytes>` per line.

conmon writes one record per chunk; `P` marks a partial line continued by the next record,
`F` a full one. When the file passes the container's max-size, the log keeper renames it
to `<path>.1` (older ones shift to `.2`...) and conmon starts a new one (logkeeper.py);
the reader reads the generations oldest first.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from portside.numbers import is_digits

_RFC3339 = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")


@dataclass
class LogEntry:
    """One line of output (partial records joined); `data` ends with b"\\n" unless the
    stream ended without one."""

    time_ns: int  # unix time in nanoseconds
    stream: str  # "stdout" | "stderr"
    data: bytes

    @property
    def timestamp(self) -> str:
        """RFC 3339 with nanoseconds in UTC, as `docker logs -t` prints it."""
        secs, ns = divmod(self.time_ns, 1_000_000_000)
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{ns:09d}Z"


def parse_timestamp(raw: bytes) -> int:
    """RFC 3339 (with optional fraction) to unix nanoseconds; ValueError if malformed."""
    m = _RFC3339.match(raw)
    if not m:
        raise ValueError(f"bad timestamp {raw!r}")
    base, frac, tz = m.groups()
    tzs = "+00:00" if tz == b"Z" else tz.decode()
    dt = datetime.fromisoformat(base.decode() + tzs)
    ns = int((frac or b"0").ljust(9, b"0"))
    return int(dt.timestamp()) * 1_000_000_000 + ns


def parse_record(line: bytes) -> tuple[int, str, bool, bytes] | None:
    """One k8s-file record (without its trailing newline) -> (ns, stream, full, data)."""
    parts = line.split(b" ", 3)
    if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr") or parts[2] not in (b"F", b"P"):
        return None
    try:
        ns = parse_timestamp(parts[0])
    except ValueError:
        return None
    data = parts[3] if len(parts) == 4 else b""
    return ns, parts[1].decode(), parts[2] == b"F", data


def generations(path: Path) -> list[Path]:
    """The log's files, oldest first: path.N ... path.1, path."""
    rotated = []
    for p in path.parent.glob(path.name + ".*"):
        suffix = p.name[len(path.name) + 1 :]
        if is_digits(suffix):
            rotated.append((int(suffix), p))
    return [p for _, p in sorted(rotated, reverse=True)] + [path]


class _Joiner:
    """Joins partial records into lines, per stream."""

    def __init__(self) -> None:
        self.pending: dict[str, tuple[int, bytearray]] = {}

    def feed(self, line: bytes) -> LogEntry | None:
        rec = parse_record(line)
        if rec is None:
            return None
        ns, stream, full, data = rec
        if stream in self.pending:
            first_ns, buf = self.pending.pop(stream)
            buf += data
            ns, data = first_ns, bytes(buf)
        if not full:
            self.pending[stream] = (ns, bytearray(data))
            return None
        return LogEntry(ns, stream, data + b"\n")

    def flush(self) -> list[LogEntry]:
        out = [LogEntry(ns, s, bytes(b)) for s, (ns, b) in self.pending.items()]
        self.pending.clear()
        return sorted(out, key=lambda e: e.time_ns)


def _lines(f: object, carry: bytearray) -> Iterator[bytes]:
    chunk = f.read(65536)  # type: ignore[attr-defined]
    while chunk:
        carry += chunk
        *complete, rest = bytes(carry).split(b"\n")
        carry[:] = rest
        yield from complete
        chunk = f.read(65536)  # type: ignore[attr-defined]


def read_logs(
    path: Path,
    since: float | None = None,
    until: float | None = None,
    tail: int | None = None,
    follow: bool = False,
    stop: Callable[[], bool] | None = None,
    poll_interval: float = 0.1,
    stop_fd: int | None = None,
) -> Iterator[LogEntry]:
    """Yield the log's lines, oldest first.

    `since`/`until` are unix times (inclusive/exclusive); `tail` keeps the last N lines of
    what is already written. With `follow`, keeps reading new lines (across rotations)
    until `stop()` returns true or `stop_fd` becomes readable (e.g. `Runtime.exit_fd`)
    and everything written has been read. New output wakes the reader at once (inotify);
    `stop()` is checked every `poll_interval`. Timestamps are the consumer's to format
    (`LogEntry.timestamp`).
    """
    since_ns = int(since * 1e9) if since is not None else None
    until_ns = int(until * 1e9) if until is not None else None

    def wanted(e: LogEntry) -> bool:
        return (since_ns is None or e.time_ns >= since_ns) and (
            until_ns is None or e.time_ns < until_ns
        )

    joiner = _Joiner()
    backlog: deque[LogEntry] | None = deque(maxlen=tail) if tail is not None and tail >= 0 else None
    # Read every finished generation, then the current file (kept open for follow).
    try:
        live_ino = os.stat(path).st_ino
    except FileNotFoundError:
        live_ino = -1
    for gen in generations(path)[:-1]:
        try:
            if os.stat(gen).st_ino == live_ino:
                continue  # a link to the live file (logs of an older portside)
            with open(gen, "rb") as f:
                for line in _lines(f, bytearray()):
                    e = joiner.feed(line)
                    if e is not None and wanted(e):
                        if backlog is not None:
                            backlog.append(e)
                        else:
                            yield e
        except FileNotFoundError:
            continue
    try:
        cur = open(path, "rb")  # noqa: SIM115 - kept open while following
    except FileNotFoundError:
        if not follow:
            if backlog is not None:
                yield from backlog
            yield from (e for e in joiner.flush() if wanted(e))
            return
        cur = None
    carry = bytearray()
    waiter: _Waiter | None = None
    try:
        if cur is not None:
            for line in _lines(cur, carry):
                e = joiner.feed(line)
                if e is not None and wanted(e):
                    if backlog is not None:
                        backlog.append(e)
                    else:
                        yield e
        if backlog is not None:
            yield from backlog
        if not follow:
            for e in joiner.flush():
                if wanted(e):
                    yield e
            return
        waiter = _Waiter(path.parent)
        stopped = False
        while True:
            done = stopped or (stop() if stop else False)
            if cur is not None:
                for line in _lines(cur, carry):
                    e = joiner.feed(line)
                    if e is not None and wanted(e):
                        yield e
                        if until_ns is not None and e.time_ns >= until_ns:
                            return
            # conmon replaced the file (rotation): switch to the new one.
            try:
                st = os.stat(path)
                if cur is None or st.st_ino != os.fstat(cur.fileno()).st_ino:
                    if cur is not None:
                        for line in _lines(cur, carry):
                            e = joiner.feed(line)
                            if e is not None and wanted(e):
                                yield e
                        cur.close()
                    cur = open(path, "rb")  # noqa: SIM115
                    carry.clear()
                    continue
            except FileNotFoundError:
                pass
            if done:
                for e in joiner.flush():
                    if wanted(e):
                        yield e
                return
            stopped = waiter.wait(poll_interval, stop_fd)
    finally:
        if cur is not None:
            cur.close()
        if waiter is not None:
            waiter.close()


class _Waiter:
    """Sleeps until the log's directory changes, `stop_fd` is readable, or a timeout."""

    def __init__(self, directory: Path) -> None:
        self.fd = -1
        try:
            from portside.runtime.mounts import libc

            fd = libc().inotify_init1(os.O_CLOEXEC | os.O_NONBLOCK)
            # IN_MODIFY | IN_CREATE | IN_MOVED_TO
            if fd >= 0 and libc().inotify_add_watch(fd, str(directory).encode(),
                                                    0x2 | 0x100 | 0x80) >= 0:
                self.fd = fd
            elif fd >= 0:
                os.close(fd)
        except OSError:
            self.fd = -1

    def wait(self, timeout: float, stop_fd: int | None) -> bool:
        """True when `stop_fd` became readable."""
        fds = [f for f in (self.fd, stop_fd) if f is not None and f >= 0]
        if not fds:
            time.sleep(timeout)
            return False
        ready, _, _ = select.select(fds, [], [], timeout)
        if self.fd in ready:
            with contextlib.suppress(OSError):
                while os.read(self.fd, 65536):
                    pass
        return stop_fd is not None and stop_fd in ready

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
