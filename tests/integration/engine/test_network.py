"""Containers on networks through the CLI: the default bridge, published ports, user
networks with names, none and host."""

from __future__ import annotations

import json
import urllib.request

from helpers.daemon import PortsideDaemon

HTTPD = "mkdir -p /www && echo served > /www/index.html && httpd -f -p 80 -h /www"


def test_default_bridge_and_published_port(daemon: PortsideDaemon) -> None:
    daemon.cli("run", "-d", "--name", "web", "-p", "127.0.0.1::80", "busybox", "sh", "-c", HTTPD)
    row = json.loads(daemon.cli("ps", "--format", "json").stdout.splitlines()[0])
    assert "->80/tcp" in row["Ports"]
    settings = daemon.inspect("web")["NetworkSettings"]
    assert settings["Networks"]["bridge"]["IPAddress"]
    port = int(settings["Ports"]["80/tcp"][0]["HostPort"])

    def served() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                return resp.read() == b"served\n"
        except OSError:
            return False

    daemon.wait_for(served, what="the published port to answer")
    r = daemon.cli("run", "--rm", "busybox", "sh", "-c", "ip -4 -o addr show eth0")
    assert "inet " in r.stdout


def test_user_network_resolves_container_names(daemon: PortsideDaemon) -> None:
    daemon.cli("network", "create", "appnet")
    daemon.cli("run", "-d", "--name", "db", "--network", "appnet", "busybox", "sleep", "300")
    r = daemon.cli("run", "--rm", "--network", "appnet", "busybox", "ping", "-c", "1", "-W", "5",
                   "db")
    assert "1 packets received" in r.stdout
    daemon.cli("rm", "-f", "db")
    daemon.cli("network", "rm", "appnet")


def test_none_and_host(daemon: PortsideDaemon) -> None:
    r = daemon.cli("run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net")
    assert r.stdout.split() == ["lo"]
    r = daemon.cli("run", "--rm", "--network", "host", "busybox", "hostname")
    import socket

    assert r.stdout.strip() == socket.gethostname()
    r = daemon.cli("run", "--rm", "--network", "nosuchnet", "busybox", "true", check=False)
    assert r.returncode == 125 and "nosuchnet" in r.stderr
    assert daemon.cli("ps", "-aq").stdout == ""


def test_a_taken_host_port_fails_the_start_and_leaves_nothing(daemon: PortsideDaemon) -> None:
    # The network is wired while the runtime creates the container: a network error
    # must still be the start's one-line error, with the runtime's container undone.
    import socket
    from pathlib import Path

    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = holder.getsockname()[1]
        r = daemon.cli("run", "-d", "--name", "clash", "-p", f"{port}:80", "busybox",
                       "sleep", "300", check=False)
    assert r.returncode != 0
    assert str(port) in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr
    cid = daemon.inspect("clash")["Id"]
    assert daemon.inspect("clash")["State"]["Running"] is False
    runtime = daemon.root / "runtime"
    assert not (runtime / cid).exists()  # no bundle, no mounted root, no conmon
    assert cid not in Path("/proc/self/mountinfo").read_text()
    assert not Path(f"/run/portside/netns/{cid}").exists()
    daemon.cli("rm", "clash")
