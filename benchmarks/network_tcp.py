"""A TCP stream through a published port against the same stream to the container's
address (the floor): throughput with iperf3, round-trip latency with a ping-pong.

Both sides are on this machine. The server runs in a network namespace attached to the
default bridge with one published port. The client plays a machine on the network: it runs
in a namespace of its own, linked to the host by a veth pair (10.210.242.0/30), and
connects either to the host's address on that link, <host port> (kernel DNAT in
prerouting, then forwarded), or to <container ip>:<port> (forwarded only). That is what
published ports are for. The same streams from the host itself to 127.0.0.1 (DNAT in the
output path, which makes the kernel route every packet again, plus masquerading) are
logged beside them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks import Context, NotAvailable, Result, register

SECONDS = 3
CLIENT_NET = ("10.210.242.1", "10.210.242.2")  # host side, client side
RTT_CLIENT = ("import socket, statistics, sys, time\n"
              "s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)\n"
              "s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)\n"
              "times = []\n"
              "for _ in range(int(sys.argv[3])):\n"
              "    start = time.perf_counter(); s.sendall(b'x'); s.recv(64)\n"
              "    times.append(time.perf_counter() - start)\n"
              "print(statistics.median(times) * 1e6)")
ROUND_TRIPS = 3000
ECHO = ("import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET,"
        " socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', {port})); s.listen();"
        " print('ready', flush=True); c, _ = s.accept();"
        " c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)\n"
        "while (b := c.recv(64)): c.sendall(b)")


@contextmanager
def _client() -> Iterator[Path]:
    """A namespace standing for another machine: a veth pair to the host, routed."""
    from portside.network.netns import create_netns, delete_netns

    host_if, peer_if = f"psbc{os.getpid() % 10**6}", f"psbp{os.getpid() % 10**6}"
    ns = create_netns(f"psbench-client-{os.getpid()}")
    try:
        for cmd in (["ip", "link", "add", host_if, "type", "veth", "peer", "name", peer_if],
                    ["ip", "link", "set", peer_if, "netns", str(ns)],
                    ["ip", "addr", "add", f"{CLIENT_NET[0]}/30", "dev", host_if],
                    ["ip", "link", "set", host_if, "up"],
                    ["nsenter", f"--net={ns}", "ip", "addr", "add", f"{CLIENT_NET[1]}/30",
                     "dev", peer_if],
                    ["nsenter", f"--net={ns}", "ip", "link", "set", peer_if, "up"],
                    ["nsenter", f"--net={ns}", "ip", "route", "add", "default", "via",
                     CLIENT_NET[0]]):
            subprocess.run(cmd, check=True, capture_output=True)
        yield ns
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        delete_netns(ns)


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


def _iperf(ns: Path, host: str, port: int, server_port: int,
           client: Path | None = None) -> float:
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
        res = subprocess.run([*_inside(client), "iperf3", "-c", host, "-p", str(port), "-t",
                              str(SECONDS), "-J"],
                             capture_output=True, text=True, timeout=SECONDS + 30)
        doc = json.loads(res.stdout)
        if "error" in doc:
            raise NotAvailable(f"iperf3: {doc['error']}")
        return float(doc["end"]["sum_received"]["bits_per_second"]) / 1e9
    finally:
        server.kill()
        server.wait()


def _streams(measure: Callable[..., float], ns: Path, ip: str, host_port: int, port: int,
             client: Path, best: Callable[[list[float]], float]) -> list[float]:
    """The best of three of each stream, interleaved (load on the machine only slows):
    from the client through the published port and to the container's address, then the
    same two from the host itself (through 127.0.0.1)."""
    runs: list[list[float]] = [[], [], [], []]
    for _ in range(3):
        runs[0].append(measure(ns, CLIENT_NET[0], host_port, port, client))
        runs[1].append(measure(ns, ip, port, port, client))
        runs[2].append(measure(ns, "127.0.0.1", host_port, port))
        runs[3].append(measure(ns, ip, port, port))
    return [best(r) for r in runs]


def _log(ctx: Context, figures: list[float], unit: str) -> None:
    published, direct, loopback, loop_direct = figures
    ctx.log(f"from another machine: published {published:.2f} {unit}, direct {direct:.2f} "
            f"{unit}; from the host: 127.0.0.1 {loopback:.2f} {unit}, direct "
            f"{loop_direct:.2f} {unit}")


@register("TCP throughput: published port vs container address", goal=0.9,
          higher_is_better=True, order=71)
def tcp_throughput(ctx: Context) -> Result:
    ctx.ensure_debs("iperf3")
    with _endpoint(ctx, 5201) as (ns, ip, host_port), _client() as client:
        figures = _streams(_iperf, ns, ip, host_port, 5201, client, max)
    _log(ctx, figures, "Gbit/s")
    return Result(figures[0], figures[1], "Gbit/s", "same stream to the container IP")


def _inside(ns: Path | None) -> list[str]:
    return ["nsenter", f"--net={ns}"] if ns is not None else []


def _rtt(ns: Path, host: str, port: int, server_port: int, client: Path | None = None
         ) -> float:
    """Median µs of a 1-byte ping-pong, the client in `client` (else on the host)."""
    server = subprocess.Popen(["nsenter", f"--net={ns}", sys.executable, "-c",
                               ECHO.format(port=server_port)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        res = subprocess.run([*_inside(client), sys.executable, "-c", RTT_CLIENT, host,
                              str(port), str(ROUND_TRIPS)],
                             capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            raise NotAvailable(f"ping-pong client: {res.stderr.strip()[-160:]}")
        return float(res.stdout)
    finally:
        server.kill()
        server.wait()


@register("TCP round trip: published port vs container address", goal=1.11,
          higher_is_better=False, order=72)
def tcp_latency(ctx: Context) -> Result:
    with _endpoint(ctx, 7777) as (ns, ip, host_port), _client() as client:
        figures = _streams(_rtt, ns, ip, host_port, 7777, client, min)
    _log(ctx, figures, "µs")
    return Result(figures[0], figures[1], "µs", "same stream to the container IP")
