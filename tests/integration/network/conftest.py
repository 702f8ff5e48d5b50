"""Fixtures for real-kernel network tests: a private NetworkManager, namespaces, clean-up.

Every test uses its own root, its own subnets (10.210.0.0/16 upwards, distinct per test),
bridges and namespaces named with a `pst` prefix, and removes everything it made: the
manager's endpoints and networks, the namespaces, and the dnsmasq processes it started
(the shared one and the private ones of containers with --dns).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from portside.network.manager import NetworkManager
from portside.network.netavark import find_binary
from portside.network.netns import NETNS_DIR, create_netns, delete_netns

BUSYBOX = "/bin/busybox"


def _available() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if not os.access("/usr/lib/cni/bridge", os.X_OK):
        return "needs the CNI plugins (Debian containernetworking-plugins)"
    if os.environ.get("PORTSIDE_NETWORK_DRIVER") == "netavark":
        try:
            find_binary("netavark")
        except Exception as exc:
            return str(exc)
    if not shutil.which("dnsmasq"):
        return "needs dnsmasq (Debian dnsmasq-base)"
    if not os.access(BUSYBOX, os.X_OK):
        return "needs busybox-static"
    return None


_why = _available()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _why and "integration/network" in str(item.fspath):
            item.add_marker(pytest.mark.skip(reason=_why))


@pytest.fixture
def manager(root: Path, netns: Callable[[], Path]) -> Iterator[NetworkManager]:
    """A NetworkManager on the test's root; its default bridge is private to the test.

    It is released before the namespaces are deleted, as the engine does."""
    tag = secrets.token_hex(3)
    m = NetworkManager(root, default_bridge=f"pst{tag}d0", default_subnet="10.210.250.0/24")
    try:
        yield m
    finally:
        cleanup_manager(m)


def cleanup_manager(m: NetworkManager) -> None:
    m.purge()
    for pid in [*m.dns.running(), *m.resolvers.running()]:
        os.kill(pid, signal.SIGTERM)
    m.close()


@pytest.fixture
def netns() -> Iterator[Callable[[], Path]]:
    """Factory of fresh named namespaces (only lo), deleted after the test."""
    made: list[Path] = []

    def make() -> Path:
        path = create_netns(f"pst-{secrets.token_hex(6)}", NETNS_DIR)
        made.append(path)
        return path

    yield make
    for p in made:
        delete_netns(p)


def run_in(ns: Path, *cmd: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """Run a command in a namespace's network stack (busybox applets by name)."""
    argv = [BUSYBOX, *cmd] if not cmd[0].startswith("/") else list(cmd)
    return subprocess.run(["nsenter", f"--net={ns}", *argv], capture_output=True, text=True,
                          timeout=timeout)


def run_as_container(ns: Path, files: dict[str, str], *cmd: str,
                     timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """Run in the namespace with the container's /etc files bind-mounted, as the engine
    will, in a private mount namespace (the host's files are never touched)."""
    binds = " && ".join(f"mount --bind {src} {dst}" for dst, src in files.items())
    script = f"mount --make-rprivate / && {binds} && exec nsenter --net={ns} {BUSYBOX} \"$@\""
    return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", *cmd],
                          capture_output=True, text=True, timeout=timeout)


def serve_once(ns: Path, port: int, reply: str, udp: bool = False) -> subprocess.Popen[str]:
    """A one-shot TCP (or UDP) server inside `ns` answering `reply`."""
    args = ["nc", "-l", "-p", str(port)]
    if udp:
        args = ["nc", "-u", "-l", "-p", str(port)]
        return subprocess.Popen(["nsenter", f"--net={ns}", BUSYBOX, *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    args += ["-e", BUSYBOX, "echo", reply]
    proc = subprocess.Popen(["nsenter", f"--net={ns}", BUSYBOX, *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    wait_listening(ns, port)
    return proc


def wait_listening(ns: Path, port: int, tries: int = 100) -> None:
    import time
    for _ in range(tries):
        out = subprocess.run(["nsenter", f"--net={ns}", "ss", "-Htln", f"sport = :{port}"],
                             capture_output=True, text=True).stdout
        if out.strip():
            return
        time.sleep(0.02)
    raise AssertionError(f"nothing listens on {port} in {ns}")


def host_address() -> str:
    """The host's primary (non-loopback) IPv4 address: the source of its default route."""
    out = subprocess.run(["ip", "-4", "route", "get", "1.1.1.1"], capture_output=True,
                         text=True).stdout.split()
    return out[out.index("src") + 1]


def fetch(host: str, port: int) -> str:
    """Connect from the host and read what the server says."""
    import socket
    with socket.create_connection((host, port), timeout=5) as s:
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    return data.decode()
