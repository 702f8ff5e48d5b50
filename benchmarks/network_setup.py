"""Network setup time a container start pays: default bridge against `--network none`.

Each tool runs the same busybox `true` with `run --rm --network bridge`, then with
`--network none`, 7 times; the figure is the median difference. portside: the `portside`
command and a daemon on a private root (benchmarks/_portside.py). Reference, as the
issue asks: the same difference for `docker run --rm` (Debian's docker.io 20.10, a
private dockerd with its own bridge and Docker's iptables rules; benchmarks/_docker.py),
the image imported from a busybox rootfs as there is no registry to pull from. The same
difference for `podman run --rm` (that rootfs directory) is its own row, with the same
target. The issue's target is a third of Docker's difference (docker ~90 ms, podman
~200 ms on the issue's machine).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from typing import Any

from benchmarks import Context, NotAvailable, Result, register
from benchmarks._docker import Docker
from benchmarks._portside import Portside

RUNS = 7
_CACHE: dict[str, Any] = {}


def _portside(ctx: Context) -> float:
    """`portside run --rm` through a daemon on a private root, as docker's and podman's."""
    if os.geteuid() != 0:
        raise NotAvailable("needs root")
    ps = Portside(ctx.workdir / "portside")
    try:
        ps.start()

        def run(network: str) -> float:
            start = time.perf_counter()
            ps("run", "--rm", "--network", network, "busybox", "/bin/true")
            return time.perf_counter() - start

        run("bridge")  # warm-up: the default bridge and its firewall table
        diffs = [run("bridge") - run("none") for _ in range(RUNS)]
    finally:
        ps.stop()
    return statistics.median(diffs) * 1000


def _podman(ctx: Context) -> float:
    if not shutil.which("podman"):
        raise NotAvailable("podman is not installed")
    rootfs = ctx.scratch("rootfs")
    (rootfs / "bin").mkdir()
    shutil.copy("/bin/busybox", rootfs / "bin" / "busybox")
    (rootfs / "bin" / "true").symlink_to("busybox")
    conf = ctx.workdir / "containers.conf"  # this host's rlimit quirk (DESIGN.md)
    conf.write_text('[containers]\ndefault_ulimits = ["nofile=20000:20000",'
                    ' "nproc=32768:32768"]\n')
    env = dict(os.environ, CONTAINERS_CONF=str(conf))

    def run(network: str) -> float:
        start = time.perf_counter()
        res = subprocess.run(["podman", "--runtime", "runc", "run", "--rm", "--network",
                              network, "--rootfs", str(rootfs), "/bin/true"],
                             capture_output=True, text=True, env=env)
        if res.returncode != 0:
            raise NotAvailable(f"podman run failed: {res.stderr.strip()[-120:]}")
        return time.perf_counter() - start

    run("bridge")
    diffs = [run("bridge") - run("none") for _ in range(RUNS)]
    return statistics.median(diffs) * 1000


def _docker(ctx: Context) -> float:
    """docker.io's engine (benchmarks/_docker.py, default --iptables and a bridge of its
    own) running the same busybox `true`, imported from the same rootfs as podman's."""
    rootfs = ctx.workdir / "rootfs"
    if not rootfs.exists():
        rootfs.mkdir()
        (rootfs / "bin").mkdir()
        shutil.copy("/bin/busybox", rootfs / "bin" / "busybox")
        (rootfs / "bin" / "true").symlink_to("busybox")
    archive = ctx.workdir / "rootfs.tar"
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(archive), "."], check=True)
    dk = Docker(ctx)
    try:
        dk("import", str(archive), "psbench-busybox")

        def run(network: str) -> float:
            start = time.perf_counter()
            dk("run", "--rm", "--network", network, "psbench-busybox", "/bin/true")
            return time.perf_counter() - start

        run("bridge")
        diffs = [run("bridge") - run("none") for _ in range(RUNS)]
    finally:
        dk.stop()
    return statistics.median(diffs) * 1000


def _figures(ctx: Context) -> dict[str, Any]:
    """portside's, podman's and docker's differences, measured once for both rows."""
    if _CACHE:
        return _CACHE
    _CACHE["portside"] = _portside(ctx)
    ctx.log(f"portside bridge-none: {_CACHE['portside']:.0f} ms")
    for name, fn in (("podman", _podman), ("docker", _docker)):
        try:
            _CACHE[name] = fn(ctx)
            ctx.log(f"{name} bridge-none: {_CACHE[name]:.0f} ms")
        except NotAvailable as exc:
            _CACHE[f"{name}_error"] = str(exc)
            ctx.log(f"{name}: n/a ({exc})")
    return _CACHE


@register("network setup added to run (bridge − none)", goal=0.33, higher_is_better=False,
          order=70)
def network_setup(ctx: Context) -> Result:
    return _row(_figures(ctx), "docker", "docker run --rm")


@register("network setup added to run (bridge − none) vs podman", goal=0.33,
          higher_is_better=False, order=70)
def network_setup_podman(ctx: Context) -> Result:
    return _row(_figures(ctx), "podman", "podman run --rm")


def _row(f: dict[str, Any], tool: str, name: str) -> Result:
    if tool not in f:
        return Result(f["portside"], None, "ms", name, f"n/a ({f.get(f'{tool}_error')})")
    return Result(f["portside"], f[tool], "ms", name)
