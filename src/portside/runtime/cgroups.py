"""The host's cgroup layout (v1, v2 or hybrid), per-container cgroup dirs, their statistics
and their removal.

Containers get the cgroup `/<parent>/<id>` (absolute from each hierarchy's root) on every
hierarchy the runtime uses; `remove` rmdirs it everywhere so a deleted container leaves no
cgroup behind, whichever runtime created it.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from portside.numbers import is_digits


@dataclass(frozen=True)
class Layout:
    """Mounted cgroup hierarchies: v1 controllers -> mount point, and the cgroup2 mount."""

    v1: dict[str, str] = field(default_factory=dict)
    v2: str | None = None

    @property
    def mode(self) -> str:
        if self.v1 and self.v2:
            return "hybrid"
        return "v1" if self.v1 else "v2"

    def needs_private_mount_ns(self, runtime: str) -> bool:
        """crun refuses a v1 host that also mounts cgroup2 with controllers
        ("cgroups in hybrid mode not supported"); it runs fine where that mount is gone."""
        return self.mode == "hybrid" and Path(runtime).name == "crun"

    def hierarchies(self) -> list[str]:
        """Every distinct mount point (v1 ones and the v2 one)."""
        seen = sorted(set(self.v1.values()))
        return seen + ([self.v2] if self.v2 else [])

    def controller_dir(self, controller: str, cgpath: str) -> Path | None:
        """The container's dir for a controller ("memory", "pids"...): v1 first, else v2."""
        rel = cgpath.lstrip("/")
        if controller in self.v1:
            return Path(self.v1[controller]) / rel
        if self.v2 and self.mode == "v2":
            return Path(self.v2) / rel
        return None


def parse_mountinfo(text: str) -> Layout:
    v1: dict[str, str] = {}
    v2: str | None = None
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split()
        rfields = right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        mountpoint = fields[4].replace("\\040", " ")
        fstype, superopts = rfields[0], rfields[2]
        if fstype == "cgroup2":
            if v2 is None or mountpoint == "/sys/fs/cgroup":
                v2 = mountpoint
        elif fstype == "cgroup":
            for opt in superopts.split(","):
                if opt in ("rw", "ro") or opt.startswith(("release_agent=", "clone_children")):
                    continue
                name = opt[5:] if opt.startswith("name=") else opt
                v1.setdefault(name, mountpoint)
    return Layout(v1, v2)


@lru_cache(maxsize=1)
def detect() -> Layout:
    """The layout of this host (read once per process)."""
    with open("/proc/self/mountinfo") as f:
        return parse_mountinfo(f.read())


def container_dirs(layout: Layout, cgpath: str) -> list[Path]:
    rel = cgpath.lstrip("/")
    return [Path(h) / rel for h in layout.hierarchies()]


def _rmdir_tree(path: str) -> None:
    """rmdir a cgroup and its child cgroups, deepest first. Tries the cgroup itself first:
    listing a cgroup dir means stat-ing dozens of control files."""
    try:
        os.rmdir(path)
        return
    except FileNotFoundError:
        return
    except OSError:
        pass
    with os.scandir(path) as entries:
        children = [e.path for e in entries if e.is_dir(follow_symlinks=False)]
    for child in children:
        _rmdir_tree(child)
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(path)


def remove(layout: Layout, cgpath: str) -> list[Path]:
    """Remove the container's cgroup from every hierarchy; returns dirs that stayed (busy)."""
    left = []
    for d in container_dirs(layout, cgpath):
        try:
            _rmdir_tree(str(d))
        except OSError:
            left.append(d)
    return left


def remove_patiently(layout: Layout, cgpath: str, patience: float = 5.0) -> list[Path]:
    """`remove`, retried for a moment: a process that has just been killed may still be
    leaving the cgroup (EBUSY). Returns the dirs that stayed."""
    busy = remove(layout, cgpath)
    deadline = time.monotonic() + patience
    delay = 0.005
    while busy and time.monotonic() < deadline:
        time.sleep(delay)  # rare: only while a dying process still holds the cgroup
        delay = min(delay * 2, 0.2)
        busy = remove(layout, cgpath)
    return busy


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _int(path: Path) -> int | None:
    raw = _read(path).strip()
    if not raw or raw == "max":
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def _keyed(path: Path) -> dict[str, int]:
    out = {}
    for line in _read(path).splitlines():
        parts = line.split()
        if len(parts) == 2 and is_digits(parts[1].lstrip("-")):
            out[parts[0]] = int(parts[1])
    return out


_UNLIMITED_V1 = 1 << 62  # v1 reports "no limit" as a page-rounded LONG_MAX


def stats(layout: Layout, cgpath: str) -> dict[str, int]:
    """What `docker stats` needs: cpu_usage_ns (+ user/system ns, CFS periods/throttling),
    memory_usage, memory_limit (0 = none), memory_cache, pids_current, pids_limit
    (0 = none), blkio_read, blkio_write (bytes), oom_kills."""
    rel = cgpath.lstrip("/")
    out = dict.fromkeys(
        ("cpu_usage_ns", "cpu_user_ns", "cpu_system_ns", "cpu_periods", "cpu_throttled_periods",
         "cpu_throttled_ns", "memory_usage", "memory_limit", "memory_cache", "pids_current",
         "pids_limit", "blkio_read", "blkio_write", "oom_kills"), 0)
    if layout.mode == "v2" and layout.v2:
        d = Path(layout.v2) / rel
        cpu = _keyed(d / "cpu.stat")
        out["cpu_usage_ns"] = cpu.get("usage_usec", 0) * 1000
        out["cpu_user_ns"] = cpu.get("user_usec", 0) * 1000
        out["cpu_system_ns"] = cpu.get("system_usec", 0) * 1000
        out["cpu_periods"] = cpu.get("nr_periods", 0)
        out["cpu_throttled_periods"] = cpu.get("nr_throttled", 0)
        out["cpu_throttled_ns"] = cpu.get("throttled_usec", 0) * 1000
        out["memory_usage"] = _int(d / "memory.current") or 0
        out["memory_limit"] = _int(d / "memory.max") or 0
        mstat = _keyed(d / "memory.stat")
        out["memory_cache"] = mstat.get("inactive_file", 0)
        out["pids_current"] = _int(d / "pids.current") or 0
        out["pids_limit"] = _int(d / "pids.max") or 0
        for line in _read(d / "io.stat").splitlines():
            for kv in line.split()[1:]:
                k, _, v = kv.partition("=")
                if k == "rbytes":
                    out["blkio_read"] += int(v)
                elif k == "wbytes":
                    out["blkio_write"] += int(v)
        out["oom_kills"] = _keyed(d / "memory.events").get("oom_kill", 0)
        return out
    v1 = layout.v1
    if "cpuacct" in v1:
        d = Path(v1["cpuacct"]) / rel
        out["cpu_usage_ns"] = _int(d / "cpuacct.usage") or 0
        ticks = _keyed(d / "cpuacct.stat")  # in USER_HZ
        tick_ns = 1_000_000_000 // (os.sysconf("SC_CLK_TCK") or 100)
        out["cpu_user_ns"] = ticks.get("user", 0) * tick_ns
        out["cpu_system_ns"] = ticks.get("system", 0) * tick_ns
    if "cpu" in v1:
        cpu = _keyed(Path(v1["cpu"]) / rel / "cpu.stat")
        out["cpu_periods"] = cpu.get("nr_periods", 0)
        out["cpu_throttled_periods"] = cpu.get("nr_throttled", 0)
        out["cpu_throttled_ns"] = cpu.get("throttled_time", 0)
    if "memory" in v1:
        d = Path(v1["memory"]) / rel
        out["memory_usage"] = _int(d / "memory.usage_in_bytes") or 0
        limit = _int(d / "memory.limit_in_bytes") or 0
        out["memory_limit"] = 0 if limit >= _UNLIMITED_V1 else limit
        out["memory_cache"] = _keyed(d / "memory.stat").get("total_inactive_file", 0)
        out["oom_kills"] = _keyed(d / "memory.oom_control").get("oom_kill", 0)
    if "pids" in v1:
        d = Path(v1["pids"]) / rel
        out["pids_current"] = _int(d / "pids.current") or 0
        out["pids_limit"] = _int(d / "pids.max") or 0
    if "blkio" in v1:
        d = Path(v1["blkio"]) / rel
        for name in ("blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_service_bytes"):
            text = _read(d / name)
            if text:
                for line in text.splitlines():
                    parts = line.split()
                    if len(parts) == 3 and parts[1] == "Read":
                        out["blkio_read"] += int(parts[2])
                    elif len(parts) == 3 and parts[1] == "Write":
                        out["blkio_write"] += int(parts[2])
                break
    return out


def pids(layout: Layout, cgpath: str) -> list[int]:
    """Host pids of every process in the container's cgroup."""
    d = layout.controller_dir("pids", cgpath) or layout.controller_dir("memory", cgpath)
    if d is None:
        return []
    return [int(p) for p in _read(d / "cgroup.procs").split()]


def frozen(layout: Layout, cgpath: str) -> bool:
    """Whether the container is paused (freezer)."""
    if layout.mode == "v2" and layout.v2:
        return _read(Path(layout.v2) / cgpath.lstrip("/") / "cgroup.freeze").strip() == "1"
    if "freezer" in layout.v1:
        state = _read(Path(layout.v1["freezer"]) / cgpath.lstrip("/") / "freezer.state")
        return state.strip() in ("FROZEN", "FREEZING")
    return False


def supports_blkio_weight(layout: Layout) -> bool:
    """Whether block I/O weights can be set (v1 `blkio.weight`, v2 `io.weight`): the file
    exists only with a scheduler that weighs (BFQ/CFQ). Docker drops the weight, with a
    warning, where it cannot."""
    names = ("blkio.weight", "blkio.bfq.weight") if "blkio" in layout.v1 else (
        "io.weight", "io.bfq.weight")
    top = layout.v1.get("blkio") or (layout.v2 if layout.mode == "v2" else None)
    if top is None:
        return False
    base = Path(top)
    return any((base / name).exists() or (base / "portside" / name).exists() for name in names)
