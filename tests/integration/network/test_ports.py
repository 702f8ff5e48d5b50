"""Published ports: kernel DNAT from the host's loopback and primary address, errors."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from portside.network.errors import PortInUse
from portside.network.manager import NetworkManager
from portside.network.ports import parse_publish, publish_all

from .conftest import fetch, host_address, run_in, serve_once


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        port: int = s.getsockname()[1]
        return port


def test_published_port_from_loopback_and_primary_address(manager: NetworkManager,
                                                           netns: Callable[[], Path]) -> None:
    manager.create("pst-web", subnet="10.210.20.0/24")
    ns = netns()
    port = _free_port()
    att = manager.attach("w" * 64, ns, "pst-web", ports=parse_publish(f"{port}:80"))
    assert manager.published_ports("w" * 64) == parse_publish(f"{port}:80")
    for host in ("127.0.0.1", host_address()):
        server = serve_once(ns, 80, f"hello via {host}")
        try:
            assert fetch(host, port).strip() == f"hello via {host}"
        finally:
            server.kill()
            server.wait()
    # and directly to the container's address (the floor the benchmark compares with)
    server = serve_once(ns, 80, "direct")
    try:
        assert fetch(att.ip, 80).strip() == "direct"
    finally:
        server.kill()
        server.wait()


def test_host_ip_binding_only_answers_there(manager: NetworkManager,
                                            netns: Callable[[], Path]) -> None:
    ns = netns()
    port = _free_port()
    manager.attach("l" * 64, ns, "bridge", ports=parse_publish(f"127.0.0.1:{port}:443/tcp"))
    server = serve_once(ns, 443, "tls-ish")
    try:
        with pytest.raises(OSError):
            fetch(host_address(), port)
        assert fetch("127.0.0.1", port).strip() == "tls-ish"
    finally:
        server.kill()
        server.wait()


def test_udp_and_ranges_and_publish_all(manager: NetworkManager,
                                        netns: Callable[[], Path]) -> None:
    ns = netns()
    base = _free_port()
    while base > 65000:
        base = _free_port()
    mappings = parse_publish(f"{base}-{base + 1}:7000-7001") + parse_publish(f"{base}:53/udp")
    mappings += publish_all({"9000/tcp": {}})
    att = manager.attach("u" * 64, ns, "bridge", ports=mappings)
    got = {(p.container_port, p.proto): p.host_port for p in att.ports}
    assert got[(7000, "tcp")] == base and got[(7001, "tcp")] == base + 1
    assert got[(53, "udp")] == base and got[(9000, "tcp")] > 0

    server = serve_once(ns, 7001, "second of range")
    try:
        assert fetch("127.0.0.1", base + 1).strip() == "second of range"
    finally:
        server.kill()
        server.wait()
    server = serve_once(ns, 9000, "picked")
    try:
        assert fetch("127.0.0.1", got[(9000, "tcp")]).strip() == "picked"
    finally:
        server.kill()
        server.wait()

    # UDP: a one-datagram receiver inside the namespace prints what reaches it
    recv = subprocess.Popen(
        ["nsenter", f"--net={ns}", sys.executable, "-c",
         "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM);"
         "s.bind(('0.0.0.0', 53)); print('ready', flush=True);"
         "print(s.recvfrom(100)[0].decode(), flush=True)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert recv.stdout is not None and recv.stdout.readline().strip() == "ready"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"ping-over-udp", ("127.0.0.1", base))
        out, _ = recv.communicate(timeout=10)
        assert "ping-over-udp" in out
    finally:
        if recv.poll() is None:
            recv.kill()
            recv.wait()


def test_taken_port_is_a_clear_error_and_leaves_nothing(manager: NetworkManager,
                                                        netns: Callable[[], Path]) -> None:
    ns1, ns2 = netns(), netns()
    with socket.socket() as holder:  # a host process holds the port
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        with pytest.raises(PortInUse, match=f"0.0.0.0:{taken}/tcp.*host process"):
            manager.attach("p" * 64, ns1, "bridge", ports=parse_publish(f"{taken}:80"))
    assert manager.attachments("p" * 64) == []
    assert "eth0" not in run_in(ns1, "ip", "-o", "link").stdout

    port = _free_port()
    manager.attach("p" * 64, ns1, "bridge", ports=parse_publish(f"{port}:80"))
    with pytest.raises(PortInUse, match=f"container {'p' * 12}") as err:
        manager.attach("q" * 64, ns2, "bridge", ports=parse_publish(f"127.0.0.1:{port}:80"))
    assert "\n" not in str(err.value)
    assert manager.attachments("q" * 64) == []
    # a different protocol on the same number is fine
    manager.attach("q" * 64, ns2, "bridge", ports=parse_publish(f"{port}:80/udp"))


def test_containers_reach_published_ports_through_the_host(manager: NetworkManager,
                                                           netns: Callable[[], Path]) -> None:
    manager.create("pst-hairpin", subnet="10.210.21.0/24")
    web_ns, other_ns = netns(), netns()
    port = _free_port()
    manager.attach("h" * 64, web_ns, "pst-hairpin", ports=parse_publish(f"{port}:80"))
    manager.attach("o" * 64, other_ns, "pst-hairpin")
    for client in (other_ns, web_ns):  # a neighbour, and the container itself (hairpin)
        server = serve_once(web_ns, 80, "through the host")
        try:
            got = run_in(client, "nc", "-w", "3", host_address(), str(port))
            assert "through the host" in got.stdout, got.stderr
        finally:
            server.kill()
            server.wait()


def test_ports_follow_containers_coming_and_going_and_a_flushed_table_comes_back(
        manager: NetworkManager, netns: Callable[[], Path]) -> None:
    # While the network's bridge stays, containers change only the port maps of the
    # table (no rebuild); a port must answer exactly while its container is there.
    manager.create("pst-come", subnet="10.210.24.0/24")
    a, b = netns(), netns()
    pa, pb = _free_port(), _free_port()
    manager.attach("a" * 64, a, "pst-come", ports=parse_publish(f"{pa}:80"))
    manager.attach("b" * 64, b, "pst-come", ports=parse_publish(f"127.0.0.1:{pb}:80"))

    def answers(ns: Path, port: int, text: str) -> bool:
        server = serve_once(ns, 80, text)
        try:
            return fetch("127.0.0.1", port).strip() == text
        except OSError:
            return False
        finally:
            server.kill()
            server.wait()

    assert answers(a, pa, "a") and answers(b, pb, "b")
    manager.release_all("a" * 64, a)
    assert not answers(a, pa, "a is gone")
    assert answers(b, pb, "b still")
    # Someone deletes our table by hand: the next change finds out and rebuilds it.
    subprocess.run(["nft", "delete", "table", "ip", manager.table], check=True)
    c = netns()
    pc = _free_port()
    manager.attach("c" * 64, c, "pst-come", ports=parse_publish(f"{pc}:80"))
    assert answers(c, pc, "c") and answers(b, pb, "b again")
    manager.release_all("b" * 64, b)
    manager.release_all("c" * 64, c)
