"""A TCP stream through a published port against the same stream to the container's
address (the floor): throughput with iperf3, round-trip latency with a ping-pong.

Both sides are on this machine: the server runs in a network namespace attached to the
default bridge with one published port; the client runs on the host and connects either
to 127.0.0.1:<host port> (kernel DNAT, netavark's rules) or to <container ip>:<port>.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks import Context, NotAvailable, Result, register

SECONDS = 3
ROUND_TRIPS = 3000
ECHO = ("import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET,"
        " socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', {port})); s.listen();"
        " print('ready', flush=True); c, _ = s.accept();"
        " c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)\n"
        "while (b := c.recv(64)): c.sendall(b)")


@contextmanager
def _endpoint(ctx: Context, port: int) -> Iterator[tuple[Path, str, int]]:
    """A namespace on the default bridge publishing `port`: (netns, its ip, host port)."""
    from portside.network.manager import NetworkManager
    from portside.network.netns import create_netns, delete_netns
    from portside.network.ports import PortMapping

    if os.geteuid() != 0:
        raise NotAvailable("needs root")
    m = NetworkManager(ctx.scratch("root"), default_bridge="psbench1",
                       default_subnet="10.210.241.0/24")
    ns = create_netns(f"psbench-{os.getpid()}")
    cid = f"{os.getpid():064x}"
    try:
        att = m.attach(cid, ns, "bridge", ports=[PortMapping("", 0, port)])
        yield ns, att.ip, att.ports[0].host_port
    finally:
        delete_netns(ns)
        m.purge()
        m.close()


def _iperf(ns: Path, host: str, port: int, server_port: int) -> float:
    server = subprocess.Popen(["nsenter", f"--net={ns}", "iperf3", "-s", "-1", "-p",
                               str(server_port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):  # until it listens
            out = subprocess.run(["nsenter", f"--net={ns}", "ss", "-Htln",
                                  f"sport = :{server_port}"], capture_output=True, text=True)
            if out.stdout.strip():
                break
            time.sleep(0.02)
        res = subprocess.run(["iperf3", "-c", host, "-p", str(port), "-t", str(SECONDS), "-J"],
                             capture_output=True, text=True, timeout=SECONDS + 30)
        doc = json.loads(res.stdout)
        if "error" in doc:
            raise NotAvailable(f"iperf3: {doc['error']}")
        return float(doc["end"]["sum_received"]["bits_per_second"]) / 1e9
    finally:
        server.kill()
        server.wait()


@register("TCP throughput: published port vs container address", goal=0.9,
          higher_is_better=True, order=71)
def tcp_throughput(ctx: Context) -> Result:
    ctx.ensure_debs("iperf3")
    with _endpoint(ctx, 5201) as (ns, ip, host_port):
        published, direct = [], []
        for _ in range(3):  # interleaved, best of three: load on the machine only slows
            published.append(_iperf(ns, "127.0.0.1", host_port, 5201))
            direct.append(_iperf(ns, ip, 5201, 5201))
    ctx.log(f"published {max(published):.2f} Gbit/s, direct {max(direct):.2f} Gbit/s")
    return Result(max(published), max(direct), "Gbit/s", "same stream to the container IP")


def _rtt(ns: Path, host: str, port: int, server_port: int) -> float:
    server = subprocess.Popen(["nsenter", f"--net={ns}", sys.executable, "-c",
                               ECHO.format(port=server_port)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        with socket.create_connection((host, port), timeout=10) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            times = []
            for _ in range(ROUND_TRIPS):
                start = time.perf_counter()
                s.sendall(b"x")
                s.recv(64)
                times.append(time.perf_counter() - start)
        return statistics.median(times) * 1e6
    finally:
        server.kill()
        server.wait()


def _host_address() -> str:
    out = subprocess.run(["ip", "-4", "route", "get", "1.1.1.1"], capture_output=True,
                         text=True).stdout.split()
    return out[out.index("src") + 1] if "src" in out else "127.0.0.1"


@register("TCP round trip: published port (127.0.0.1) vs container address", goal=1.11,
          higher_is_better=False, order=72)
def tcp_latency(ctx: Context) -> Result:
    host = _host_address()
    with _endpoint(ctx, 7777) as (ns, ip, host_port):
        published, via_host, direct = [], [], []
        for _ in range(3):
            published.append(_rtt(ns, "127.0.0.1", host_port, 7777))
            via_host.append(_rtt(ns, host, host_port, 7777))
            direct.append(_rtt(ns, ip, 7777, 7777))
    ctx.log(f"published via 127.0.0.1 {min(published):.1f} µs, via {host}"
            f" {min(via_host):.1f} µs, direct {min(direct):.1f} µs")
    return Result(min(published), min(direct), "µs", "same stream to the container IP")
