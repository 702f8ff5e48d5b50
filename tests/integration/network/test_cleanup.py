"""Create/remove cycles leave the host as it was: links, namespaces, rules, DNS servers."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from portside.network.manager import NetworkManager
from portside.network.netns import NETNS_DIR, create_netns, delete_netns
from portside.network.ports import parse_publish
from portside.network.resolver import DnsSettings

_COUNTERS = re.compile(r"counter packets \d+ bytes \d+")


def _ruleset() -> Counter[str]:
    out = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    return Counter(_COUNTERS.sub("counter", ln.strip()) for ln in out.splitlines()
                   if ln.strip() and not ln.startswith("#"))


def _links() -> dict[str, str]:
    """{link name: its bridge ("" when it has none)}."""
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    links = {}
    for ln in out.splitlines():
        name = ln.split(":")[1].strip().split("@")[0]
        fields = ln.split()
        links[name] = fields[fields.index("master") + 1] if "master" in fields else ""
    return links


def _netns() -> list[str]:
    """Namespaces of this suite (the engine's containers share the directory)."""
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(("pst-", "teardown-")))


def _dnsmasq_of(m: NetworkManager) -> list[str]:
    """Any dnsmasq process of this root, by its command line."""
    mark = str(m.dir).encode()
    found = []
    for p in Path("/proc").iterdir():
        try:
            cmd = (p / "cmdline").read_bytes() if p.name.isdigit() else b""
        except OSError:
            continue
        if b"dnsmasq" in cmd and mark in cmd:
            found.append(p.name)
    return found


def _cycles(m: NetworkManager, n: int) -> None:
    for i in range(n):
        net = m.create(f"pst-cycle{i}", subnet="10.210.40.0/24")
        a = create_netns(f"pst-cyc-a{i}")
        b = create_netns(f"pst-cyc-b{i}")
        try:
            # b has --dns: a DNS server of its own runs in its namespace (the upstream
            # address needs not answer)
            m.resolvers.configure(f"{i + 10**6:064x}", DnsSettings(("10.213.250.1",)))
            m.attach(f"{i:064x}", a, net.name, aliases=["svc"], ports=parse_publish("80"))
            m.attach(f"{i + 10**6:064x}", b, net.name, container_name=f"b{i}")
            assert len(m.resolvers.running()) == 1
            m.attach(f"{i + 10**6:064x}", b, "bridge")
            m.detach(f"{i:064x}", a, net.name)
            if i % 10 == 9:  # a crashed container: its namespace went first (its DNS
                delete_netns(b)  # server holds it until release_all stops that)
            m.release_all(f"{i + 10**6:064x}")
            m.release_all(f"{i + 10**6:064x}")  # idempotent
            m.remove(net.name)
        finally:
            delete_netns(a)
            delete_netns(b)


def _check_cycles(manager: NetworkManager, n: int) -> None:
    _cycles(manager, 1)  # warm-up: netavark's shared chains (see docs/network.md)
    links, spaces, rules = _links(), _netns(), _ruleset()
    _cycles(manager, n)
    after_links = _links()
    ours = {manager.default_bridge}

    def mine(name: str, master: str) -> bool:
        return name.startswith(manager.bridge_prefix) or name in ours or master in ours or \
            master.startswith(manager.bridge_prefix)
    assert [n for n, m in after_links.items() if mine(n, m)] == [manager.default_bridge]
    if {n for n in after_links} - set(links) == set() and set(links) - set(after_links) == set():
        assert after_links == links  # nobody else changed links meanwhile: exactly as before
    assert _netns() == spaces
    after = _ruleset()
    added, removed = after - rules, rules - after
    ours = [ln for ln in (added + removed) if "10.210." in ln or "NETAVARK-DN-" in ln]
    assert ours == [], ours
    # other tools (podman in interop tests) may change rules meanwhile: compare the totals
    # only when nobody else did
    if not added and not removed:
        assert sum(after.values()) == sum(rules.values())
    assert manager.dns.running() == [] and manager.resolvers.running() == []
    assert not _dnsmasq_of(manager)
    assert manager.store.attachments() == []
    assert [n.name for n in manager.store.networks()] == ["bridge"]


def test_fifty_cycles_leave_nothing_behind(manager: NetworkManager) -> None:
    _check_cycles(manager, 50)


@pytest.mark.slow
def test_five_hundred_cycles_leave_nothing_behind(manager: NetworkManager) -> None:
    _check_cycles(manager, 500)


def test_recover_after_restart_releases_dead_containers(root: Path,
                                                        manager: NetworkManager) -> None:
    manager.create("pst-restart", subnet="10.210.41.0/24")
    dead_ns = create_netns("pst-restart-dead")
    live_ns = create_netns("pst-restart-live")
    try:
        dead = manager.attach("d" * 64, dead_ns, "pst-restart", ports=parse_publish("80"))
        manager.close()  # the daemon stops; the dead container's namespace goes with it
        delete_netns(dead_ns)
        again = NetworkManager(root, default_bridge=manager.default_bridge,
                               default_subnet=manager.default_subnet)
        manager.store = again.store  # the fixture's clean-up uses the reopened store
        live = again.attach("l" * 64, live_ns, "pst-restart")
        assert live.ip != dead.ip  # the lease survived the restart
        assert again.recover(["l" * 64]) == ["d" * 64]
        assert again.published_ports("d" * 64) == []
        rules = "".join(_ruleset())
        assert f"{dead.ip}:80" not in rules and f"{dead.ports[0].host_port}" not in rules
        again.release_all("l" * 64)
        again.remove("pst-restart")
        assert "10.210.41." not in "".join(_ruleset())
    finally:
        delete_netns(dead_ns)
        delete_netns(live_ns)
