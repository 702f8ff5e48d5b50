"""`--dns` on user-defined networks, as in Docker: the container's own DNS server on
127.0.0.11 answers the names of its networks and forwards other names to its --dns servers.

The outside server is a host dnsmasq answering a made-up name (tests/helpers/upstream_dns);
the host's resolvers never know that name, so getting its address proves the forwarding.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.upstream_dns import private_dns_servers, upstream_dns

from portside.network import containers
from portside.network.manager import NetworkManager
from portside.network.netns import list_netns

from .conftest import run_as_container, run_in

OUTSIDE = "10.213.9.9"


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with upstream_dns({"outside.test": OUTSIDE}) as address:
        yield address


def _ours(manager: NetworkManager) -> list[int]:
    return private_dns_servers(manager.resolvers.dir)


def test_forwards_to_dns_and_answers_sibling_names(manager: NetworkManager, tmp_path: Path,
                                                   upstream: str) -> None:
    manager.create("pst-fwd", subnet="10.213.10.0/24")
    sib_id, me_id = "a1" * 32, "b1" * 32
    try:
        sib = containers.setup(manager, sib_id, "sibling", {}, {"NetworkMode": "pst-fwd"},
                               tmp_path / "sib")
        assert manager.resolvers.running() == []  # no --dns: the shared server, no process
        me = containers.setup(manager, me_id, "asker", {},
                              {"NetworkMode": "pst-fwd", "Dns": [upstream]}, tmp_path / "me")
        ns = Path(me.namespace or "")
        resolv = Path(me.files["/etc/resolv.conf"]).read_text()
        assert [ln for ln in resolv.splitlines() if ln.startswith("nameserver")] == [
            "nameserver 127.0.0.11"]
        [pid] = manager.resolvers.running()
        assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(ns).st_ino

        out = run_as_container(ns, me.files, "nslookup", "outside.test").stdout
        assert f"Address: {OUTSIDE}" in out  # through the --dns server
        out = run_as_container(ns, me.files, "nslookup", "sibling").stdout
        assert f"Address: {sib.attachments[0].ip}" in out  # and the network's names
        out = run_as_container(Path(sib.namespace or ""), sib.files, "nslookup",
                               "outside.test").stdout
        assert OUTSIDE not in out  # without --dns: the host's resolvers, which do not know it

        containers.teardown(manager, sib_id)  # a removed sibling stops resolving at once
        out = run_as_container(ns, me.files, "nslookup", "sibling").stdout
        assert sib.attachments[0].ip not in out
    finally:
        containers.teardown(manager, sib_id)
        containers.teardown(manager, me_id)
    assert manager.resolvers.running() == [] and _ours(manager) == []
    assert me_id not in list_netns()
    assert not manager.resolvers.dir.exists() or list(manager.resolvers.dir.iterdir()) == []


def test_connect_and_disconnect_update_its_names(manager: NetworkManager, tmp_path: Path,
                                                 upstream: str) -> None:
    manager.create("pst-fwd-b", subnet="10.213.12.0/24")
    manager.create("pst-fwd-c", subnet="10.213.13.0/24")
    ids = {"me": "c1" * 32, "bee": "d1" * 32, "sea": "e1" * 32}
    try:
        bee = containers.setup(manager, ids["bee"], "bee", {}, {"NetworkMode": "pst-fwd-b"},
                               tmp_path / "b")
        sea = containers.setup(manager, ids["sea"], "sea", {}, {"NetworkMode": "pst-fwd-c"},
                               tmp_path / "c")
        # on the default bridge (no DNS there): --dns is the container's resolver itself
        me = containers.setup(manager, ids["me"], "me", {}, {"Dns": [upstream]},
                              tmp_path / "me")
        ns = Path(me.namespace or "")
        assert Path(me.files["/etc/resolv.conf"]).read_text().startswith(
            f"nameserver {upstream}\n")
        assert manager.resolvers.running() == []

        manager.attach(ids["me"], ns, "pst-fwd-b", container_name="me")  # network connect
        [pid] = manager.resolvers.running()
        out = run_in(ns, "nslookup", "bee", "127.0.0.11").stdout
        assert f"Address: {bee.attachments[0].ip}" in out
        assert sea.attachments[0].ip not in run_in(ns, "nslookup", "sea", "127.0.0.11").stdout
        assert OUTSIDE in run_in(ns, "nslookup", "outside.test", "127.0.0.11").stdout

        manager.attach(ids["me"], ns, "pst-fwd-c", container_name="me")
        assert manager.resolvers.running() == [pid]  # reloaded, not restarted
        assert sea.attachments[0].ip in run_in(ns, "nslookup", "sea", "127.0.0.11").stdout

        manager.detach(ids["me"], ns, "pst-fwd-b")
        assert bee.attachments[0].ip not in run_in(ns, "nslookup", "bee", "127.0.0.11").stdout
        assert sea.attachments[0].ip in run_in(ns, "nslookup", "sea", "127.0.0.11").stdout

        manager.detach(ids["me"], ns, "pst-fwd-c")  # no DNS network left: the server goes
        assert manager.resolvers.running() == [] and _ours(manager) == []
        assert manager.resolvers.settings(ids["me"]).servers == (upstream,)  # kept: running
    finally:
        for cid in ids.values():
            containers.teardown(manager, cid)
    assert _ours(manager) == [] and not set(ids.values()) & set(list_netns())


def test_daemon_restart_finds_or_restarts_it(root: Path, manager: NetworkManager,
                                             tmp_path: Path, upstream: str) -> None:
    manager.create("pst-fwd-r", subnet="10.213.14.0/24")
    live_id, dead_id = "f1" * 32, "f2" * 32
    try:
        live = containers.setup(manager, live_id, "live", {},
                                {"NetworkMode": "pst-fwd-r", "Dns": [upstream]}, tmp_path / "l")
        containers.setup(manager, dead_id, "dead", {},
                         {"NetworkMode": "pst-fwd-r", "Dns": [upstream]}, tmp_path / "d")
        ns = Path(live.namespace or "")
        before = dict(zip(sorted((live_id, dead_id)), manager.resolvers.running(), strict=True))
        manager.close()  # the daemon stops; its containers (and their servers) keep running
        again = NetworkManager(root, default_bridge=manager.default_bridge,
                               default_subnet=manager.default_subnet)
        manager.store = again.store  # the fixture's clean-up uses the reopened store
        again.recover([live_id])  # the dead container is gone meanwhile
        assert again.resolvers.running() == [before[live_id]]  # found again, same process
        assert not Path(f"/proc/{before[dead_id]}").exists() or \
            b"dnsmasq" not in Path(f"/proc/{before[dead_id]}/cmdline").read_bytes()

        os.kill(before[live_id], signal.SIGKILL)  # it died while the daemon was down
        for _ in range(200):
            if again.resolvers.running() == []:
                break
            import time
            time.sleep(0.01)
        again.recover([live_id])
        [pid] = again.resolvers.running()
        assert pid != before[live_id]
        assert OUTSIDE in run_in(ns, "nslookup", "outside.test", "127.0.0.11").stdout
        assert live.attachments[0].ip in run_in(ns, "nslookup", "live", "127.0.0.11").stdout
    finally:
        containers.teardown(manager, live_id)
        containers.teardown(manager, dead_id)
    assert _ours(manager) == []
