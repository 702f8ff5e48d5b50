"""`--dns` on user-defined networks through the CLI, as in Docker: outside names go to the
--dns servers, container names still resolve, connect/disconnect and a daemon restart keep
it right, and nothing is left behind; `--hostname` with `--network container:` is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.daemon import PortsideDaemon
from helpers.upstream_dns import private_dns_servers, upstream_dns

OUTSIDE = "10.213.9.9"


@pytest.fixture
def upstream() -> Iterator[str]:
    with upstream_dns({"outside.test": OUTSIDE}) as address:
        yield address


def _private_dns(root: Path) -> list[int]:
    return private_dns_servers(root / "network" / "resolvers")


def _ip(daemon: PortsideDaemon, name: str, network: str) -> str:
    ip: str = daemon.inspect(name)["NetworkSettings"]["Networks"][network]["IPAddress"]
    return ip


def test_dns_forwards_outside_names_to_the_dns_servers(daemon: PortsideDaemon,
                                                      upstream: str) -> None:
    daemon.cli("network", "create", "--subnet", "10.213.20.0/24", "fwdnet")
    daemon.cli("run", "-d", "--name", "sib", "--network", "fwdnet", "busybox", "sleep", "300")
    r = daemon.cli("run", "--rm", "--network", "fwdnet", "--dns", upstream, "busybox", "sh",
                   "-c", "cat /etc/resolv.conf; nslookup outside.test; nslookup sib")
    assert "nameserver 127.0.0.11\n" in r.stdout and upstream not in r.stdout.split("Server")[0]
    assert f"Address: {OUTSIDE}" in r.stdout
    assert f"Address: {_ip(daemon, 'sib', 'fwdnet')}" in r.stdout
    r = daemon.cli("run", "--rm", "--network", "fwdnet", "busybox", "nslookup", "outside.test",
                   check=False)
    assert OUTSIDE not in r.stdout  # no --dns: the host's resolvers, which do not know it
    assert _private_dns(daemon.root) == []  # gone with the --rm container
    daemon.cli("rm", "-f", "sib")
    daemon.cli("network", "rm", "fwdnet")


def test_connect_disconnect_restart_and_removal(daemon: PortsideDaemon, upstream: str) -> None:
    daemon.cli("network", "create", "--subnet", "10.213.21.0/24", "fwdlate")
    daemon.cli("run", "-d", "--name", "peer", "--network", "fwdlate", "busybox", "sleep", "300")
    daemon.cli("run", "-d", "--name", "late", "--dns", upstream, "--dns-search", "example.org",
               "busybox", "sleep", "300")
    resolv = daemon.cli("exec", "late", "cat", "/etc/resolv.conf").stdout
    assert resolv.startswith(f"nameserver {upstream}\n")  # the default bridge: --dns itself
    assert _private_dns(daemon.root) == []

    daemon.cli("network", "connect", "fwdlate", "late")
    resolv = daemon.cli("exec", "late", "cat", "/etc/resolv.conf").stdout
    assert resolv.startswith("nameserver 127.0.0.11\nsearch example.org\n")
    out = daemon.cli("exec", "late", "nslookup", "peer.", check=False).stdout
    assert f"Address: {_ip(daemon, 'peer', 'fwdlate')}" in out
    assert OUTSIDE in daemon.cli("exec", "late", "nslookup", "outside.test.",
                                       check=False).stdout
    [pid] = _private_dns(daemon.root)

    daemon.stop()  # live-restore: the container and its DNS server keep running
    daemon.start()
    assert _private_dns(daemon.root) == [pid]
    assert OUTSIDE in daemon.cli("exec", "late", "nslookup", "outside.test.",
                                       check=False).stdout

    daemon.cli("network", "disconnect", "fwdlate", "late")
    assert _private_dns(daemon.root) == []
    resolv = daemon.cli("exec", "late", "cat", "/etc/resolv.conf").stdout
    assert resolv.startswith(f"nameserver {upstream}\nsearch example.org\n")

    daemon.cli("network", "connect", "fwdlate", "late")
    assert len(_private_dns(daemon.root)) == 1
    daemon.cli("stop", "-t", "0", "late")
    assert _private_dns(daemon.root) == []  # stopped with the container
    daemon.cli("start", "late")
    assert len(_private_dns(daemon.root)) == 1
    daemon.cli("rm", "-f", "late", "peer")
    assert _private_dns(daemon.root) == []
    assert not list((daemon.root / "network" / "resolvers").glob("*"))
    daemon.cli("network", "rm", "fwdlate")


def test_hostname_with_container_network_is_refused(daemon: PortsideDaemon) -> None:
    daemon.cli("run", "-d", "--name", "host1", "busybox", "sleep", "300")
    before = daemon.cli("ps", "-aq").stdout
    r = daemon.cli("run", "--rm", "--network", "container:host1", "--hostname", "other",
                   "busybox", "true", check=False)
    assert r.returncode == 125
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]  # one line
    assert "conflicting options: hostname and the network mode" in r.stderr
    assert daemon.cli("ps", "-aq").stdout == before  # nothing created
    r = daemon.cli("run", "--rm", "--network", "container:host1", "busybox", "hostname")
    assert r.stdout.strip() == daemon.inspect("host1")["Config"]["Hostname"]
    daemon.cli("rm", "-f", "host1")
