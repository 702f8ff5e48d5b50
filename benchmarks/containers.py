"""Issue 3's container figures, end to end from the shell, beside crun, podman and docker.

One daemon on a private root and socket serves every figure; they are measured together
the first time any of these entries runs (about a minute) and the daemon, its containers
and podman's are removed before that entry returns.

- `portside run --rm --network none busybox true` against bare `crun run` of the same
  bundle (the config.json portside's runtime generated for that image, `true` as the
  process; crun runs in a private mount namespace without the hybrid cgroup2 mount, as the
  runtime does) and against `podman run --rm --network none` (private --root/--runroot,
  `--runtime runc`, the rlimit containers.conf of DESIGN.md, the image given to podman with
  `podman load` of `portside save`).
  Against `docker run --rm --network none` too: Debian's docker.io engine (20.10, its own
  containerd, runc) started privately by benchmarks/_docker.py, the image given with
  `docker load` of the same archive, timed exactly as podman (same pause, min of 5).
- 50 detached `sleep` containers (`run -d --network none`, one command after the other),
  against podman and docker doing the same.
- Memory per running container: conmon RSS plus the daemon's RSS growth over the 50,
  against podman's conmon RSS (the PSS of both, shared libraries divided among the
  conmons, is logged beside it) and docker's containerd-shim RSS (its PSS, and dockerd's
  and containerd's growth over the 50, logged).

Each reference runs alone: podman's containers are removed before docker starts.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import Context, NotAvailable, Result, register
from benchmarks._docker import Docker
from benchmarks._podman import Podman
from benchmarks._portside import Portside

RUNS = 9
# Every timed command starts after this much idle time, as a typed or scripted command
# does. Back to back, bare `crun run`s come ~10 ms apart and each finds the kernel's
# cgroup-migration lock still in its writer mode from the last one, skipping the RCU grace
# period (10-15 ms here) that any start after a pause pays; the same pause before every
# command of every tool keeps the comparison fair. The back-to-back floor is logged too.
IDLE = 0.1
DETACHED = 50
_CACHE: dict[str, Any] = {}


def _pss_kib(pid: int) -> int:
    """Proportional set size: shared library pages divided among their users (what a
    container really adds, beside RSS, which counts libc once per conmon)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _pids_of(exe_name: str, marker: str) -> list[int]:
    """pids of processes named `exe_name` whose command line mentions `marker`."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if (d / "comm").read_text().strip() != exe_name:
                continue
            if marker in (d / "cmdline").read_bytes().decode(errors="replace"):
                out.append(int(d.name))
        except OSError:
            continue
    return out


def _floor_bundle(ps: Portside, work: Path) -> tuple[Path, str]:
    """A bundle for bare crun: the config.json portside generated for a busybox `true`,
    over that container's mounted root (it stays mounted until the container is removed)."""
    ps("run", "--name", "floor", "--network", "none", "busybox", "true")
    cid = ps("inspect", "-f", "{{.Id}}", "floor").strip()
    src = ps.root / "runtime" / cid
    config = json.loads((src / "config.json").read_text())
    config["process"]["args"] = ["/bin/true"]
    config["process"]["terminal"] = False
    config["linux"].pop("cgroupsPath", None)
    bundle = work / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle, cid


_FLOOR = """
import subprocess, sys, time
crun, bundle, state, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
idle, tag = float(sys.argv[5]), sys.argv[6]
times = []
for i in range(runs):
    time.sleep(idle)
    t = time.perf_counter()
    r = subprocess.run([crun, "--root", state, "run", "-b", bundle, f"floor{tag}{i}"],
                       stdin=subprocess.DEVNULL, capture_output=True)
    times.append(time.perf_counter() - t)
    if r.returncode:
        sys.exit(r.stderr.decode()[-200:])
print(min(times))
"""


def _crun_floor(bundle: Path, work: Path, idle: float = IDLE) -> float:
    """Seconds of the fastest `crun run` (each after `idle` seconds), timed inside a mount
    namespace where the hybrid cgroup2 hierarchy is not mounted (crun refuses it;
    DESIGN.md), so only crun is timed."""
    crun = shutil.which("crun")
    if crun is None:
        raise NotAvailable("crun is not installed")
    state = work / "crun-state"
    script = ("umount -l /sys/fs/cgroup/unified 2>/dev/null; exec \"$@\"")
    r = subprocess.run(["unshare", "-m", "--propagation", "slave", "sh", "-c", script, "sh",
                        sys.executable, "-c", _FLOOR, crun, str(bundle), str(state),
                        str(RUNS), str(idle), str(int(idle * 1000))],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise NotAvailable(f"crun run failed: {r.stderr.strip()[-160:]}")
    return float(r.stdout.strip())


def timed_min(fn: Any, runs: int, idle: float = IDLE) -> float:
    """The best of `runs` timings of `fn`, each after `idle` seconds of quiet."""
    times = []
    for _ in range(runs):
        time.sleep(idle)
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _measure(ctx: Context) -> dict[str, Any]:
    if os.geteuid() != 0:
        raise NotAvailable("needs root")
    work = Path(tempfile.mkdtemp(prefix="ps-ctr-bench-", dir="/var/tmp"))
    out: dict[str, Any] = {}
    ps = Portside(work)
    pm: Podman | None = None
    try:
        ps.start()
        bundle, _ = _floor_bundle(ps, work)
        out["crun"] = _crun_floor(bundle, work) * 1000
        out["crun_back_to_back"] = _crun_floor(bundle, work, 0.0) * 1000
        ps("run", "--rm", "--network", "none", "busybox", "true")  # warm
        out["portside_run"] = timed_min(
            lambda: ps("run", "--rm", "--network", "none", "busybox", "true"), RUNS) * 1000
        ctx.log(f"run --rm: portside {out['portside_run']:.0f} ms, crun run {out['crun']:.1f} ms"
                f" ({out['crun_back_to_back']:.1f} ms back to back)")
        daemon_before = _rss_kib(ps.proc.pid) if ps.proc else 0
        t = time.perf_counter()
        for _ in range(DETACHED):
            ps("run", "-d", "--network", "none", "busybox", "sleep", "600")
        out["portside_50"] = time.perf_counter() - t
        conmons = _pids_of("conmon", str(ps.root))
        conmon_kib = statistics.mean(_rss_kib(p) for p in conmons) if conmons else 0.0
        pss_kib = statistics.mean(_pss_kib(p) for p in conmons) if conmons else 0.0
        growth = (_rss_kib(ps.proc.pid) - daemon_before) / DETACHED if ps.proc else 0.0
        out["portside_mem"] = (conmon_kib + max(growth, 0.0)) / 1024
        ctx.log(f"{DETACHED} detached: portside {out['portside_50']:.2f} s; per container "
                f"{out['portside_mem']:.2f} MiB (conmon {conmon_kib / 1024:.2f} MiB + daemon "
                f"{growth / 1024:.2f} MiB); conmon PSS {pss_kib / 1024:.2f} MiB")
        ps("rm", "-f", *ps("ps", "-aq", "--no-trunc").split())
        archive = work / "busybox.tar"
        ps("save", "--format", "docker", "-o", str(archive), "busybox")
        try:
            pm = Podman(work, archive)
            pm("run", "--rm", "--network", "none", "busybox", "true")  # warm
            out["podman_run"] = timed_min(
                lambda: pm("run", "--rm", "--network", "none", "busybox", "true"), 5) * 1000
            t = time.perf_counter()
            for _ in range(DETACHED):
                pm("run", "-d", "--network", "none", "busybox", "sleep", "600")
            out["podman_50"] = time.perf_counter() - t
            conmons = _pids_of("conmon", pm.marker)
            out["podman_mem"] = (statistics.mean(_rss_kib(p) for p in conmons) / 1024
                                 if conmons else None)
            pss = statistics.mean(_pss_kib(p) for p in conmons) / 1024 if conmons else 0.0
            ctx.log(f"podman: run --rm {out['podman_run']:.0f} ms, {DETACHED} detached "
                    f"{out['podman_50']:.2f} s, conmon {out['podman_mem'] or 0:.2f} MiB "
                    f"(PSS {pss:.2f} MiB)")
        except NotAvailable as exc:
            out["podman_error"] = str(exc)
        if pm is not None:  # podman's 50 are gone before docker starts its own
            pm.clean()
            pm = None
        _measure_docker(ctx, archive, out)
    finally:
        if pm is not None:
            pm.clean()
        ps.stop()
        subprocess.run(["umount", "-R", str(work)], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)
    return out


def _measure_docker(ctx: Context, archive: Path, out: dict[str, Any]) -> None:
    """docker.io's engine, the same commands as podman's (benchmarks/_docker.py)."""
    dk: Docker | None = None
    try:
        dk = Docker(ctx, archive)
        dk("run", "--rm", "--network", "none", "busybox", "true")  # warm
        out["docker_run"] = timed_min(
            lambda: dk("run", "--rm", "--network", "none", "busybox", "true"), 5) * 1000
        daemons = _pids_of("dockerd", dk.marker) + _pids_of("containerd", dk.marker)
        daemons_before = sum(_rss_kib(p) for p in daemons)
        t = time.perf_counter()
        for _ in range(DETACHED):
            dk("run", "-d", "--network", "none", "busybox", "sleep", "600")
        out["docker_50"] = time.perf_counter() - t
        shims = dk.shim_pids()
        if len(shims) != DETACHED:
            ctx.log(f"docker: {len(shims)} containerd shims for {DETACHED} containers")
        out["docker_mem"] = (statistics.mean(_rss_kib(p) for p in shims) / 1024
                             if shims else None)
        pss = statistics.mean(_pss_kib(p) for p in shims) / 1024 if shims else 0.0
        growth = (sum(_rss_kib(p) for p in daemons) - daemons_before) / DETACHED / 1024
        ctx.log(f"docker {dk.version}: run --rm {out['docker_run']:.0f} ms, {DETACHED} "
                f"detached {out['docker_50']:.2f} s, containerd-shim "
                f"{out['docker_mem'] or 0:.2f} MiB (PSS {pss:.2f} MiB; dockerd + containerd "
                f"growth {growth:.2f} MiB per container, not counted)")
    except NotAvailable as exc:
        out["docker_error"] = str(exc)
    finally:
        if dk is not None:
            dk.stop()


def _figures(ctx: Context) -> dict[str, Any]:
    if not _CACHE:
        _CACHE.update(_measure(ctx))
    return _CACHE


@register("`portside run --rm busybox true` (--network none) vs bare `crun run`", goal=2,
          higher_is_better=False, order=20)
def run_vs_crun(ctx: Context) -> Result:
    f = _figures(ctx)
    return Result(f["portside_run"], f["crun"], "ms", "`crun run` of the same bundle")


@register("`portside run --rm busybox true` (--network none) vs podman", goal=0.33,
          higher_is_better=False, order=21)
def run_vs_podman(ctx: Context) -> Result:
    return _row(_figures(ctx), "portside_run", "podman", "podman_run", "ms",
                "podman run --rm")


@register(f"start {DETACHED} detached `sleep` containers", goal=0.33, higher_is_better=False,
          order=22)
def detached(ctx: Context) -> Result:
    return _row(_figures(ctx), "portside_50", "podman", "podman_50", "s", "podman run -d")


@register("memory per running container (conmon RSS + daemon growth)", goal=1.05,
          higher_is_better=False, order=23)
def memory(ctx: Context) -> Result:
    return _row(_figures(ctx), "portside_mem", "podman", "podman_mem", "MiB",
                "podman's conmon RSS")


def _row(f: dict[str, Any], ours: str, tool: str, key: str, unit: str, name: str) -> Result:
    """portside's figure against `tool`'s, or n/a with the reason `tool` was not measured."""
    if not f.get(key):
        return Result(f[ours], None, unit, name,
                      f"n/a ({f.get(f'{tool}_error', 'not measured')})")
    return Result(f[ours], f[key], unit, name)


@register("`portside run --rm busybox true` (--network none) vs docker", goal=0.33,
          higher_is_better=False, order=21)
def run_vs_docker(ctx: Context) -> Result:
    return _row(_figures(ctx), "portside_run", "docker", "docker_run", "ms", "docker run --rm")


@register(f"start {DETACHED} detached `sleep` containers vs docker", goal=0.33,
          higher_is_better=False, order=22)
def detached_vs_docker(ctx: Context) -> Result:
    return _row(_figures(ctx), "portside_50", "docker", "docker_50", "s", "docker run -d")


@register("memory per running container (conmon RSS + daemon growth) vs docker", goal=1.05,
          higher_is_better=False, order=23)
def memory_vs_docker(ctx: Context) -> Result:
    return _row(_figures(ctx), "portside_mem", "docker", "docker_mem", "MiB",
                "docker's containerd-shim RSS")
