"""The engine's entry points: setup/teardown of a container's network from Docker fields."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from portside.network import containers
from portside.network.errors import PortInUse
from portside.network.manager import NetworkManager
from portside.network.netns import list_netns

from .conftest import fetch, run_in, serve_once


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        port: int = s.getsockname()[1]
        return port


def test_default_bridge_with_ports_files_and_inspect(manager: NetworkManager,
                                                     tmp_path: Path) -> None:
    cid = "5" * 64
    port = _free_port()
    config = {"Hostname": "web", "ExposedPorts": {"80/tcp": {}, "81/tcp": {}}}
    host_config = {"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": str(port)}]},
                   "PublishAllPorts": True, "ExtraHosts": ["db.example:10.1.2.3"],
                   "Dns": ["192.0.2.53"]}
    try:
        net = containers.setup(manager, cid, "web", config, host_config, tmp_path / "c")
        assert net.namespace == str(containers.netns_path(cid))
        ns = Path(net.namespace)
        assert set(net.files) == {"/etc/hosts", "/etc/resolv.conf", "/etc/hostname"}
        hosts = Path(net.files["/etc/hosts"]).read_text()
        assert "10.1.2.3\tdb.example" in hosts and f"{net.attachments[0].ip}\tweb" in hosts
        assert Path(net.files["/etc/resolv.conf"]).read_text().startswith(
            "nameserver 192.0.2.53\n")
        settings = containers.settings(manager, cid, config)
        assert settings["IPAddress"] == net.attachments[0].ip
        assert settings["Ports"]["80/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": str(port)}]
        picked = int(settings["Ports"]["81/tcp"][0]["HostPort"])
        server = serve_once(ns, 81, "published-all")
        try:
            assert fetch("127.0.0.1", picked).strip() == "published-all"
        finally:
            server.kill()
            server.wait()
    finally:
        containers.teardown(manager, cid)
        containers.teardown(manager, cid)  # idempotent
    assert cid not in list_netns() and manager.attachments(cid) == []


def test_none_user_network_and_host_modes(manager: NetworkManager, tmp_path: Path) -> None:
    manager.create("pst-glue", subnet="10.210.70.0/24")
    try:
        none = containers.setup(manager, "6" * 64, "quiet", {}, {"NetworkMode": "none"},
                                tmp_path / "none")
        links = run_in(Path(none.namespace or ""), "ip", "-o", "link").stdout.splitlines()
        assert len(links) == 1 and ": lo:" in links[0]

        user = containers.setup(
            manager, "7" * 64, "db", {}, {"NetworkMode": "pst-glue"}, tmp_path / "db",
            {"EndpointsConfig": {"pst-glue": {"Aliases": ["database"]}}})
        assert user.attachments[0].aliases == ["database"]
        assert Path(user.files["/etc/resolv.conf"]).read_text().startswith(
            "nameserver 10.210.70.1\n")
        out = run_in(Path(user.namespace or ""), "nslookup", "database", "10.210.70.1")
        assert user.attachments[0].ip in out.stdout

        host = containers.setup(manager, "8" * 64, "h", {}, {"NetworkMode": "host"},
                                tmp_path / "h")
        assert host.namespace == "host" and host.attachments == []
        assert Path(host.files["/etc/resolv.conf"]).read_text() == Path(
            "/etc/resolv.conf").read_text()
    finally:
        for cid in ("6" * 64, "7" * 64, "8" * 64):
            containers.teardown(manager, cid)
    assert not {"6" * 64, "7" * 64} & set(list_netns())


def test_failed_setup_leaves_nothing(manager: NetworkManager, tmp_path: Path) -> None:
    cid = "9" * 64
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        with pytest.raises(PortInUse):
            containers.setup(manager, cid, "x", {},
                             {"PortBindings": {"80/tcp": [{"HostPort": str(taken)}]}},
                             tmp_path / "x")
    assert cid not in list_netns() and manager.attachments(cid) == []
