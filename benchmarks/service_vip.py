"""HTTP through a service's VIP against the same load straight to the task's address.

One task (a namespace on a user-defined network running busybox httpd) sits behind a
service VIP (network/services.py). A client namespace on the same network, as another
task of the application, runs `wrk` (Debian) at the VIP and at the task's address,
interleaved, best of three each. busybox httpd closes every connection after one answer,
so each request is a new connection: every one goes through the balancer's DNAT (numgen
slot map), conntrack and, for the VIP, a hop through the host (the direct path stays on
the bridge). Targets: throughput at least 0.9x, latency at most 1.1x.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks import Context, NotAvailable, Result, register

SECONDS = 3
_cache: dict[str, tuple[float, float, float, float]] = {}


@contextmanager
def _service(ctx: Context) -> Iterator[tuple[Path, str, str]]:
    """(client namespace, VIP, task address) of a one-task service."""
    from portside.network.balancer import Backend, ServiceEndpoint, ServicePort
    from portside.network.manager import NetworkManager
    from portside.network.netns import create_netns, delete_netns

    if os.geteuid() != 0:
        raise NotAvailable("needs root")
    m = NetworkManager(ctx.scratch("root"), default_bridge="psbenchv0")
    www = ctx.scratch("www")
    (www / "index.html").write_text("ok\n" * 100)
    task_ns = create_netns(f"psbench-vtask-{os.getpid()}")
    client_ns = create_netns(f"psbench-vclient-{os.getpid()}")
    httpd = None
    try:
        net = m.create(f"psbench-svc-{os.getpid()}")
        task = m.attach(f"{os.getpid():064x}", task_ns, net.name)
        m.attach(f"{os.getpid() + 1:064x}", client_ns, net.name)
        httpd = subprocess.Popen(["nsenter", f"--net={task_ns}", "busybox", "httpd", "-f",
                                  "-p", "80", "-h", str(www)])
        vips = m.balancer().apply(ServiceEndpoint(
            "psbench", "bench", (net.id,), ports=(ServicePort(80),),
            backends=(Backend("t1", net.id, task.ip),)))
        yield client_ns, vips[net.id], task.ip
    finally:
        if httpd is not None:
            httpd.kill()
            httpd.wait()
        m.purge()
        m.close()
        delete_netns(task_ns)
        delete_netns(client_ns)


def _wrk(client: Path, address: str) -> tuple[float, float]:
    """(requests/s, mean latency in ms) of wrk against http://address/."""
    res = subprocess.run(["nsenter", f"--net={client}", "wrk", "-t1", "-c8",
                          f"-d{SECONDS}s", f"http://{address}/"],
                         capture_output=True, text=True, timeout=SECONDS + 30)
    rate = re.search(r"Requests/sec:\s*([\d.]+)", res.stdout)
    lat = re.search(r"Latency\s+([\d.]+)(us|ms|s)\b", res.stdout)
    if not rate or not lat:
        raise NotAvailable(f"wrk: {(res.stdout + res.stderr).strip()[-160:]}")
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[lat.group(2)]
    return float(rate.group(1)), float(lat.group(1)) * scale


def _measure(ctx: Context) -> tuple[float, float, float, float]:
    """(VIP req/s, direct req/s, VIP ms, direct ms), measured once for both entries."""
    if "figures" not in _cache:
        ctx.ensure_debs("wrk")
        with _service(ctx) as (client, vip, direct):
            vip_runs, direct_runs = [], []
            for _ in range(3):
                vip_runs.append(_wrk(client, vip))
                direct_runs.append(_wrk(client, direct))
        best_rate = (max(r for r, _ in vip_runs), max(r for r, _ in direct_runs))
        best_lat = (min(lat for _, lat in vip_runs), min(lat for _, lat in direct_runs))
        _cache["figures"] = (*best_rate, *best_lat)
        ctx.log(f"VIP {best_rate[0]:.0f} req/s {best_lat[0]:.3f} ms; direct "
                f"{best_rate[1]:.0f} req/s {best_lat[1]:.3f} ms")
    return _cache["figures"]


@register("HTTP throughput: service VIP vs task address (wrk)", goal=0.9,
          higher_is_better=True, order=73)
def vip_throughput(ctx: Context) -> Result:
    vip, direct, _, _ = _measure(ctx)
    return Result(vip, direct, "req/s", "same load to the task's address")


@register("HTTP latency: service VIP vs task address (wrk)", goal=1.1,
          higher_is_better=False, order=74)
def vip_latency(ctx: Context) -> Result:
    _, _, vip, direct = _measure(ctx)
    return Result(vip, direct, "ms", "same load to the task's address")
