"""Two namespaces on one user-defined network reach and resolve each other (real kernel)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from portside.network.files import write_container_files
from portside.network.manager import NetworkManager

from .conftest import run_as_container, run_in, serve_once


def test_reach_and_resolve_by_ip_name_alias_hostname(manager: NetworkManager,
                                                     netns: Callable[[], Path],
                                                     tmp_path: Path) -> None:
    net = manager.create("pst-appnet", subnet="10.210.10.0/24")
    db_ns, cli_ns = netns(), netns()
    db = manager.attach("d" * 64, db_ns, "pst-appnet", aliases=["database"],
                        hostname="dbhost", container_name="db")
    cli = manager.attach("c" * 64, cli_ns, "pst-appnet", container_name="client")
    assert db.ip != cli.ip and db.gateway == net.gateway == "10.210.10.1"
    assert db.mac and db.interface == "eth0"

    # by IP: ICMP and TCP
    assert run_in(cli_ns, "ping", "-c1", "-W2", db.ip).returncode == 0
    server = serve_once(db_ns, 5432, "db-says-hi")
    try:
        got = run_in(cli_ns, "nc", "-w", "3", db.ip, "5432")
        assert "db-says-hi" in got.stdout
    finally:
        server.kill()
        server.wait()

    # by name, alias, hostname and short id, through the network's DNS server
    for name in ("db", "database", "dbhost", "d" * 12):
        out = run_in(cli_ns, "nslookup", name, net.gateway)
        assert out.returncode == 0 and db.ip in out.stdout, (name, out.stdout + out.stderr)

    # as a container would: with its generated resolv.conf and hosts
    files = write_container_files(tmp_path / "client", "client", [cli])
    assert f"nameserver {net.gateway}" in Path(files["/etc/resolv.conf"]).read_text()
    ping = run_as_container(cli_ns, files, "ping", "-c1", "-W2", "database")
    assert ping.returncode == 0 and db.ip in ping.stdout, ping.stdout + ping.stderr

    # a removed container stops resolving, the others still do
    manager.detach("d" * 64, db_ns, "pst-appnet")
    out = run_in(cli_ns, "nslookup", "database", net.gateway)
    assert db.ip not in out.stdout
    assert cli.ip in run_in(cli_ns, "nslookup", "client", net.gateway).stdout


def test_attach_and_detach_a_second_network_while_running(manager: NetworkManager,
                                                          netns: Callable[[], Path]) -> None:
    manager.create("pst-front", subnet="10.210.11.0/24")
    manager.create("pst-back", subnet="10.210.12.0/24")
    ns = netns()
    first = manager.attach("a" * 64, ns, "pst-front")
    second = manager.attach("a" * 64, ns, "pst-back")
    assert (first.interface, second.interface) == ("eth0", "eth1")
    links = run_in(ns, "ip", "-o", "addr").stdout
    assert first.ip in links and second.ip in links
    manager.detach("a" * 64, ns, "pst-back")
    links = run_in(ns, "ip", "-o", "link").stdout
    assert "eth0" in links and "eth1" not in links
    assert [a.network for a in manager.attachments("a" * 64)] == ["pst-front"]


def test_names_on_two_networks_and_the_same_name_in_two_projects(
        manager: NetworkManager, netns: Callable[[], Path], tmp_path: Path) -> None:
    one = manager.create("pst-proj1", subnet="10.210.13.0/24")
    two = manager.create("pst-proj2", subnet="10.210.14.0/24")
    db1 = manager.attach("1" * 64, netns(), "pst-proj1", container_name="p1-db",
                         aliases=["db"])
    db2 = manager.attach("2" * 64, netns(), "pst-proj2", container_name="p2-db",
                         aliases=["db"])
    app1_ns = netns()
    app1 = manager.attach("3" * 64, app1_ns, "pst-proj1", container_name="p1-app")
    # each project's `db` is its own
    assert run_in(app1_ns, "nslookup", "db", one.gateway).stdout.count("Address: 10.210.") == 1
    assert db1.ip in run_in(app1_ns, "nslookup", "db", one.gateway).stdout
    # a container on both networks resolves the names of both, with its resolv.conf
    both = manager.attach("3" * 64, app1_ns, "pst-proj2")
    files = write_container_files(tmp_path / "app1", "p1-app", [app1, both])
    out = run_as_container(app1_ns, files, "ping", "-c1", "-W2", "p2-db")
    assert out.returncode == 0 and db2.ip in out.stdout, out.stdout + out.stderr
    assert db2.ip in run_in(app1_ns, "nslookup", "db", two.gateway).stdout
