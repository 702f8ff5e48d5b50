"""A container's state from the files conmon and we leave, and /proc; process helpers
shared by the runtime's lifecycle calls (no runtime subprocess involved)."""

from __future__ import annotations

import contextlib
import os
import select
import signal as signals
from pathlib import Path
from typing import Any

from portside.numbers import is_digits
from portside.runtime import cgroups
from portside.runtime.procs import start_time
from portside.runtime.types import ContainerState


def parse_signal(sig: str | int) -> int:
    """"SIGTERM", "TERM", "15" or 15 -> 15."""
    if isinstance(sig, int):
        return sig
    s = sig.strip().upper()
    if is_digits(s):
        return int(s)
    name = s if s.startswith("SIG") else "SIG" + s
    if name.startswith(("SIGRTMIN+", "SIGRTMAX-")) and is_digits(name[9:]):
        n = int(name[9:])
        return int(signals.SIGRTMIN) + n if name[6] == "N" else int(signals.SIGRTMAX) - n
    try:
        return int(getattr(signals, name))
    except AttributeError:
        from portside.errors import InvalidArgument

        raise InvalidArgument(f"invalid signal {sig!r}") from None


def alive(pid: int, started: int | None = None) -> bool:
    """Whether `pid` runs (not a zombie) and, if given, is the process that started then."""
    if pid <= 0:
        return False
    st = start_time(pid)
    if st is None:
        return False
    return started is None or st == started


def read_state(d: Path, meta: dict[str, Any], cgpath: str) -> ContainerState:
    """The container's status from conmon's files and /proc; no runtime call."""
    started_at = read_float(d / "started")
    code = read_int(d / "exit")
    if code is None and meta.get("pid"):
        if alive(int(meta["pid"]), meta.get("pid_start")):
            if started_at is None:
                return ContainerState("created", pid=int(meta["pid"]))
            paused = cgroups.frozen(cgroups.detect(), cgpath)
            return ContainerState("paused" if paused else "running", pid=int(meta["pid"]),
                                  started_at=started_at)
        # The process is gone; conmon writes the exit file a moment later.
        wait_pid(int(meta.get("conmon_pid") or 0), meta.get("conmon_start"), 5)
        code = read_int(d / "exit")
    finished = None
    with contextlib.suppress(OSError):
        finished = os.stat(d / "exit").st_mtime
    return ContainerState(
        "stopped", pid=0, exit_code=code, oom_killed=(d / "oom").exists(),
        started_at=started_at, finished_at=finished,
    )


def wait_pid(pid: int, started: int | None, timeout: float | None) -> bool:
    """Wait for a process (not necessarily our child) to exit; False on timeout."""
    if not alive(pid, started):
        return True
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        return bool(ready)
    finally:
        os.close(fd)


def read_int(p: Path) -> int | None:
    try:
        return int(p.read_text().strip())
    except (OSError, ValueError):
        return None


def read_float(p: Path) -> float | None:
    try:
        return float(p.read_text().strip())
    except (OSError, ValueError):
        return None
