"""`top` and `stats` in Docker's shapes, from the runtime's cgroup figures and process list."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from portside.engine.state import Container

if TYPE_CHECKING:
    from portside.engine.containers import Engine

_CLK = os.sysconf("SC_CLK_TCK")


def system_cpu_ns() -> int:
    """Host CPU time (all CPUs, all modes) in ns: the denominator of Docker's CPU %."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:8]
    return sum(int(x) for x in fields) * 10**9 // _CLK


def _pick(stats: dict[str, Any], *keys: str) -> int:
    for k in keys:
        if k in stats and stats[k] is not None:
            return int(stats[k])
    return 0


def docker_stats(engine: Engine, c: Container, prev: dict[str, Any] | None) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    if c.running:
        try:
            raw = dict(engine.runtime.stats(c.id))
        except Exception:  # noqa: BLE001 - a container exiting now has no cgroup: zeros
            raw = {}
    cpu = {
        "cpu_usage": {"total_usage": _pick(raw, "cpu_usage_ns", "cpu_total_ns", "cpu_usage",
                                           "cpu_ns"),
                      "usage_in_kernelmode": _pick(raw, "cpu_system_ns", "cpu_kernel_ns"),
                      "usage_in_usermode": _pick(raw, "cpu_user_ns")},
        "system_cpu_usage": system_cpu_ns(),
        "online_cpus": os.cpu_count() or 1,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    }
    mem_limit = _pick(raw, "memory_limit", "mem_limit") or _host_memory()
    read_bytes = _pick(raw, "blkio_read", "io_read_bytes", "blkio_read_bytes")
    write_bytes = _pick(raw, "blkio_write", "io_write_bytes", "blkio_write_bytes")
    now = time.time()
    return {
        "read": _rfc3339(now), "preread": prev["read"] if prev else "0001-01-01T00:00:00Z",
        "id": c.id, "name": "/" + c.name,
        "pids_stats": {"current": _pick(raw, "pids_current", "pids"),
                       **({"limit": raw["pids_limit"]} if raw.get("pids_limit") else {})},
        "cpu_stats": cpu,
        "precpu_stats": prev["cpu_stats"] if prev else {"cpu_usage": {"total_usage": 0},
                                                          "throttling_data": {}},
        "memory_stats": {"usage": _pick(raw, "memory_usage", "mem_usage"), "limit": mem_limit,
                         "stats": {"cache": _pick(raw, "memory_cache"),
                                   "inactive_file": _pick(raw, "memory_inactive_file")}},
        "blkio_stats": {"io_service_bytes_recursive": [
            {"major": 0, "minor": 0, "op": "read", "value": read_bytes},
            {"major": 0, "minor": 0, "op": "write", "value": write_bytes}]},
        "networks": {},
        "num_procs": 0, "storage_stats": {},
    }


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e9):09d}Z"


def _host_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


TITLES = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]


def top_table(engine: Engine, c: Container) -> dict[str, Any]:
    """`docker top`: ps -ef columns for the processes of the container's cgroup."""
    import pwd

    rows = []
    for p in engine.runtime.processes(c.id):
        try:
            user = pwd.getpwuid(int(p.get("uid", 0))).pw_name
        except (KeyError, ValueError):
            user = str(p.get("uid", ""))
        secs = int(p.get("cpu_seconds") or 0)
        rows.append([user, str(p.get("pid", "")), str(p.get("ppid", "")), "0",
                     time.strftime("%H:%M", time.localtime(float(p.get("started") or 0))),
                     str(p.get("tty") or "?"), time.strftime("%H:%M:%S", time.gmtime(secs)),
                     str(p.get("cmd") or "")])
    return {"Titles": TITLES, "Processes": rows}
