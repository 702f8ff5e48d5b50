"""Host processes from /proc: start times (to tell a pid from a reused one) and the
process table `top` shows."""

from __future__ import annotations

import os
from typing import Any

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode(errors="replace")
    except OSError:
        return None
    # comm may contain spaces and parentheses: split after the last ')'.
    head, _, rest = raw.rpartition(")")
    return [head.partition("(")[0].strip(), head.partition("(")[2], *rest.split()]


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot; None if gone or a zombie."""
    if pid <= 0:
        return None
    f = _stat_fields(pid)
    if f is None or f[2] in ("Z", "X"):
        return None
    return int(f[21])


def _boot_time() -> float:
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


def process_table(pids: list[int]) -> list[dict[str, Any]]:
    """pid, ppid, uid, state, tty, started (unix time), cpu_seconds, rss_kb, cmd per pid."""
    boot = _boot_time()
    out = []
    for pid in sorted(pids):
        f = _stat_fields(pid)
        if f is None:
            continue
        uid = 0
        rss = 0
        try:
            with open(f"/proc/{pid}/status") as sf:
                for line in sf:
                    if line.startswith("Uid:"):
                        uid = int(line.split()[1])
                    elif line.startswith("VmRSS:"):
                        rss = int(line.split()[1])
            with open(f"/proc/{pid}/cmdline", "rb") as cf:
                argv = [a.decode(errors="replace") for a in cf.read().split(b"\0") if a]
        except OSError:
            continue
        tty_nr = int(f[6])
        out.append({
            "pid": pid,
            "ppid": int(f[3]),
            "uid": uid,
            "state": f[2],
            "tty": f"pts/{os.minor(tty_nr)}" if tty_nr and os.major(tty_nr) == 136 else "?",
            "started": boot + int(f[21]) / _CLK_TCK,
            "cpu_seconds": (int(f[13]) + int(f[14])) / _CLK_TCK,
            "rss_kb": rss,
            "cmd": " ".join(argv) if argv else f"[{f[1]}]",
        })
    return out
