"""Isolation between networks, internal networks, --network none, outbound NAT."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from portside.network.files import write_container_files
from portside.network.manager import NetworkManager

from .conftest import host_address, run_as_container, run_in, serve_once


def test_networks_are_isolated_and_a_container_on_both_reaches_both(
        manager: NetworkManager, netns: Callable[[], Path]) -> None:
    manager.create("pst-red", subnet="10.210.30.0/24")
    manager.create("pst-blue", subnet="10.210.31.0/24")
    red_ns, blue_ns, both_ns = netns(), netns(), netns()
    red = manager.attach("r" * 64, red_ns, "pst-red")
    blue = manager.attach("b" * 64, blue_ns, "pst-blue")
    manager.attach("x" * 64, both_ns, "pst-red")
    manager.attach("x" * 64, both_ns, "pst-blue")

    assert run_in(red_ns, "ping", "-c1", "-W1", blue.ip).returncode != 0
    assert run_in(blue_ns, "ping", "-c1", "-W1", red.ip).returncode != 0
    server = serve_once(blue_ns, 8080, "blue")
    try:
        assert "blue" not in run_in(red_ns, "nc", "-w", "2", blue.ip, "8080").stdout
    finally:
        server.kill()
        server.wait()
    assert run_in(both_ns, "ping", "-c1", "-W2", red.ip).returncode == 0
    assert run_in(both_ns, "ping", "-c1", "-W2", blue.ip).returncode == 0


def test_internal_network_has_no_way_out(manager: NetworkManager,
                                         netns: Callable[[], Path]) -> None:
    net = manager.create("pst-vault", subnet="10.210.32.0/24", internal=True)
    a_ns, b_ns = netns(), netns()
    a = manager.attach("a" * 64, a_ns, "pst-vault", container_name="vault-a")
    manager.attach("b" * 64, b_ns, "pst-vault", container_name="vault-b")
    routes = run_in(a_ns, "ip", "route").stdout
    assert "default" not in routes
    assert run_in(a_ns, "ping", "-c1", "-W1", host_address()).returncode != 0
    # inside the network all is well, names included
    assert run_in(b_ns, "ping", "-c1", "-W2", a.ip).returncode == 0
    assert a.ip in run_in(b_ns, "nslookup", "vault-a", net.gateway).stdout


def test_default_bridge_and_outbound_nat(manager: NetworkManager,
                                         netns: Callable[[], Path], tmp_path: Path) -> None:
    ns = netns()
    att = manager.attach("o" * 64, ns, "bridge", hostname="outbound")
    net = manager.get("bridge")
    assert att.gateway == net.gateway and not att.dns_servers
    assert "default via " + net.gateway in run_in(ns, "ip", "route").stdout

    # a server on the host's primary address, reached through the bridge's gateway
    with socket.socket() as srv:
        srv.bind((host_address(), 0))
        srv.listen()
        srv.settimeout(10)
        port = srv.getsockname()[1]

        def answer() -> None:
            conn, _ = srv.accept()
            with conn:
                conn.sendall(b"host-side\n")

        t = threading.Thread(target=answer)
        t.start()
        got = run_in(ns, "nc", host_address(), str(port), timeout=15)
        t.join()
        assert "host-side" in got.stdout

    # the package mirror this machine uses, by name, as `apt-get update` in a build would
    mirror = _apt_mirror()
    try:
        socket.create_connection((mirror, 80), timeout=5).close()
    except OSError:
        pytest.skip(f"the host itself cannot reach {mirror}:80")
    files = write_container_files(tmp_path / "c", "outbound", [att])
    request = f"HEAD / HTTP/1.0\\r\\nHost: {mirror}\\r\\n\\r\\n"
    out = run_as_container(ns, files, "sh", "-c",
                           f"(printf '{request}'; sleep 2) | /bin/busybox nc {mirror} 80",
                           timeout=30)  # stdin stays open until the server has answered
    assert out.stdout.startswith("HTTP/"), out.stdout + out.stderr


def _apt_mirror() -> str:
    for path in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]:
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith(("deb ", "URIs:")):
                m = re.search(r"http://([^/\s:]+)", line)
                if m:
                    return m.group(1)
    return "deb.debian.org"


def test_network_none_is_loopback_only(netns: Callable[[], Path]) -> None:
    ns = netns()
    links = run_in(ns, "ip", "-o", "link").stdout.splitlines()
    assert len(links) == 1 and ": lo:" in links[0] and "UP" in links[0]
