"""Network setup time a container start pays: default bridge against `--network none`.

portside: what the engine does per container, through the network library (namespace,
netavark attach with one published port, /etc files, then teardown) minus the same with
`--network none` (namespace and files only). Reference: the same difference for
`podman run --rm` (a busybox rootfs directory, as there is no registry to pull from); no
Docker engine is installed here. The issue's target is a third of Docker's difference
(docker ~90 ms, podman ~200 ms on the issue's machine); we hold ours to a third of
podman's.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time

from benchmarks import Context, NotAvailable, Result, register

RUNS = 7


def _portside(ctx: Context) -> float:
    from portside.network import containers
    from portside.network.manager import NetworkManager

    if os.geteuid() != 0:
        raise NotAvailable("needs root")
    root = ctx.scratch("root")
    m = NetworkManager(root, default_bridge="psbench0", default_subnet="10.210.240.0/24")

    def one(mode: str, i: int) -> float:
        cid = f"{i:060x}bnch"
        host_config = {"NetworkMode": mode, "PortBindings": {"80/tcp": [{"HostPort": ""}]}}
        start = time.perf_counter()
        containers.setup(m, cid, f"bench{i}", {}, host_config, root / "c" / cid)
        containers.teardown(m, cid)
        return time.perf_counter() - start

    try:
        one("bridge", 0)  # warm-up: the bridge network record and netavark's chains
        diffs = [one("bridge", i) - one("none", i) for i in range(1, RUNS + 1)]
    finally:
        m.purge()
        m.close()
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


@register("network setup added to run (bridge − none)", goal=0.33, higher_is_better=False,
          order=70)
def network_setup(ctx: Context) -> Result:
    ours = _portside(ctx)
    ctx.log(f"portside bridge-none: {ours:.0f} ms")
    try:
        ref = _podman(ctx)
    except NotAvailable as exc:
        return Result(ours, None, "ms", "podman", f"n/a ({exc})")
    ctx.log(f"podman bridge-none: {ref:.0f} ms")
    return Result(ours, ref, "ms", "podman run --rm (no Docker engine here)")

