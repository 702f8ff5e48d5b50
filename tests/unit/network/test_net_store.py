"""The network records in the state backend (in memory, and SQLite where a restart or a
second process is the point). IPAM: an address is never handed out twice, also after
re-opening the store and between processes."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portside.network.errors import (
    AddressInUse,
    AddressPoolExhausted,
    AlreadyAttached,
    NetworkExists,
    NetworkNotFound,
)
from portside.network.ports import PortMapping
from portside.network.store import Attachment, Network, NetworkStore
from portside.state import MemoryBackend, SqliteBackend


def _net(name: str = "n", subnet: str = "10.210.0.0/29") -> Network:
    return Network(id=name * 4, name=name, driver="bridge", bridge=f"ps-{name}", subnet=subnet,
                   gateway=subnet.rsplit(".", 1)[0] + ".1", internal=False, dns_enabled=True)


def _att(cid: str, net: Network) -> Attachment:
    return Attachment(container_id=cid, network=net.name, network_id=net.id, ip="",
                      prefix=net.prefix, gateway=net.gateway, netns=f"/run/x/{cid}")


def test_leases_are_unique_and_survive_reopen(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    backend = SqliteBackend(db)
    store = NetworkStore(backend)
    net = _net()
    store.add_network(net)
    ips = [store.reserve(_att(f"c{i}", net), net, None, []).ip for i in range(3)]
    backend.close()
    backend = SqliteBackend(db)  # a daemon restart
    store = NetworkStore(backend)
    ips += [store.reserve(_att(f"c{i}", net), net, None, []).ip for i in range(3, 5)]
    assert len(set(ips)) == 5 and net.gateway not in ips  # a /29 has 6 hosts, 1 the gateway
    with pytest.raises(AddressPoolExhausted):
        store.reserve(_att("c9", net), net, None, [])
    with pytest.raises(AddressInUse):
        store.reserve(_att("c9", net), net, ips[0], [])
    store.release("c0", net.id)
    assert store.reserve(_att("c9", net), net, None, []).ip == ips[0]
    store.backend.close()


def test_released_addresses_are_not_reused_at_once(tmp_path: Path) -> None:
    store = NetworkStore(MemoryBackend())
    net = _net(subnet="10.210.0.0/24")
    store.add_network(net)
    first = store.reserve(_att("a", net), net, None, []).ip
    store.release("a", net.id)
    assert store.reserve(_att("b", net), net, None, []).ip != first
    store.backend.close()


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.tuples(st.booleans(), st.integers(0, 9)), max_size=60))
def test_never_two_live_holders_of_one_address(tmp_path: Path,
                                                ops: list[tuple[bool, int]]) -> None:
    store = NetworkStore(MemoryBackend())
    net = _net(subnet="10.210.0.0/28")
    store.add_network(net)
    live: set[str] = set()
    for add, n in ops:
        cid = f"c{n}"
        if add and cid not in live:
            store.reserve(_att(cid, net), net, None, [])
            live.add(cid)
        elif not add and cid in live:
            store.release(cid, net.id)
            live.discard(cid)
        ips = [a.ip for a in store.attachments(network_id=net.id)]
        assert len(ips) == len(set(ips)) == len(live)
    store.backend.close()


def test_ports_follow_their_attachment(tmp_path: Path) -> None:
    store = NetworkStore(MemoryBackend())
    net = _net()
    store.add_network(net)
    with pytest.raises(NetworkExists):
        store.add_network(net)
    store.reserve(_att("c", net), net, None, [PortMapping("", 8080, 80)])
    assert store.used_ports() == [("", 8080, "tcp", "c")]
    [att] = store.attachments(container_id="c")
    assert att.ports == [PortMapping("", 8080, 80)] and att.dns_servers == [net.gateway]
    store.release("c", net.id)
    assert store.used_ports() == []
    store.backend.close()


def test_networks_by_name_id_and_prefix() -> None:
    backend = MemoryBackend()
    store = NetworkStore(backend)
    a = Network(id="ab" + "0" * 62, name="front", driver="bridge", bridge="ps-a",
                subnet="10.210.1.0/24", gateway="10.210.1.1", internal=False,
                dns_enabled=True, labels={"x": "y"}, created="2024-01-02T00:00:00Z")
    b = Network(id="ac" + "0" * 62, name="back", driver="bridge", bridge="ps-b",
                subnet="10.210.2.0/24", gateway="10.210.2.1", internal=True,
                dns_enabled=False, created="2024-01-01T00:00:00Z")
    store.add_network(a)
    store.add_network(b)
    assert store.get_network("front") == a and store.get_network(a.id) == a
    assert store.get_network("ab") == a and store.find_network("a") is None  # ambiguous
    assert store.find_network("") is None and store.find_network("nope") is None
    with pytest.raises(NetworkNotFound, match="network nope not found"):
        store.get_network("nope")
    assert [n.name for n in store.networks()] == ["back", "front"]  # by creation
    with pytest.raises(NetworkExists):  # the name is taken, whatever the id
        store.add_network(Network(id="ad" * 32, name="front", driver="bridge", bridge="x",
                                  subnet="10.210.3.0/24", gateway="10.210.3.1",
                                  internal=False, dns_enabled=True))
    store.remove_network(a.id)
    assert store.find_network("front") is None
    assert [kv.key for kv in backend.range("")[0]] == ["network-names/back",
                                                       f"networks/{b.id}"]
    store.add_network(a)  # the name is free again


def test_an_attachment_is_its_records_and_goes_in_one_transaction() -> None:
    backend = MemoryBackend()
    store = NetworkStore(backend)
    net = _net()
    store.add_network(net)
    att = store.reserve(_att("c", net), net, "10.210.0.3",
                        [PortMapping("", 8080, 80), PortMapping("127.0.0.1", 5353, 53, "udp")])
    assert att.ip == "10.210.0.3"
    assert sorted(kv.key for kv in backend.range("")[0] if not kv.key.startswith("net")) == [
        f"attachments/c/{net.id}", f"ipam/{net.id}/10.210.0.3",
        f"ports/c/{net.id}/00000", f"ports/c/{net.id}/00001"]
    assert backend.get(f"ipam/{net.id}/10.210.0.3").value == b"c"
    store.set_mac("c", net.id, "02:42:ac:11:00:02")
    [got] = store.attachments(container_id="c")
    assert got.mac == "02:42:ac:11:00:02" and got.netns == "/run/x/c"
    assert got.ports == [PortMapping("", 8080, 80), PortMapping("127.0.0.1", 5353, 53, "udp")]
    with pytest.raises(AlreadyAttached):
        store.reserve(_att("c", net), net, None, [])
    rev = backend.revision()
    store.release("c", net.id)
    assert backend.revision() == rev + 1
    assert [kv.key for kv in backend.range("")[0] if not kv.key.startswith("net")] == []
    store.release("c", net.id)  # again: nothing
    store.set_mac("c", net.id, "x")  # a released endpoint stays released
    assert store.attachments() == []


def test_a_container_s_attachments_in_the_order_made() -> None:
    store = NetworkStore(MemoryBackend())
    nets = [_net(name, f"10.210.{i}.0/24") for i, name in enumerate("zyx")]
    for net in nets:
        store.add_network(net)
        store.reserve(_att("c", net), net, None, [])
    store.reserve(_att("b", nets[1]), nets[1], None, [])
    assert [a.network for a in store.attachments(container_id="c")] == ["z", "y", "x"]
    assert [(a.container_id, a.network) for a in store.attachments()] == [
        ("b", "y"), ("c", "z"), ("c", "y"), ("c", "x")]
    assert [a.container_id for a in store.attachments(network_id=nets[1].id)] == ["b", "c"]


def test_no_attachment_to_a_network_that_is_gone() -> None:
    store = NetworkStore(MemoryBackend())
    net = _net()
    with pytest.raises(NetworkNotFound):
        store.reserve(_att("c", net), net, None, [])
    assert store.attachments() == []


def _reserve_in_process(path: str, net: Network, worker: int, count: int,
                        barrier: threading.Barrier,
                        results: multiprocessing.Queue[list[str]]) -> None:
    backend = SqliteBackend(Path(path))
    store = NetworkStore(backend)
    barrier.wait()
    results.put([store.reserve(_att(f"w{worker}-{i}", net), net, None, []).ip
                 for i in range(count)])
    backend.close()


def test_processes_leasing_at_once_never_share_an_address(tmp_path: Path) -> None:
    """Several processes on one SQLite file lease addresses as fast as they can: each
    address goes to one of them (the ipam/ key is created only if absent)."""
    path = tmp_path / "state.db"
    backend = SqliteBackend(path)
    net = _net(subnet="10.210.0.0/24")
    NetworkStore(backend).add_network(net)
    ctx = multiprocessing.get_context("fork")
    n, count = 4, 25
    barrier = ctx.Barrier(n)
    results: multiprocessing.Queue[list[str]] = ctx.Queue()
    procs = [ctx.Process(target=_reserve_in_process,
                         args=(str(path), net, w, count, barrier, results)) for w in range(n)]
    for p in procs:
        p.start()
    ips = [ip for _ in procs for ip in results.get(timeout=120)]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(ips) == len(set(ips)) == n * count
    leases = NetworkStore(backend).attachments(network_id=net.id)
    assert sorted(a.ip for a in leases) == sorted(ips)
    backend.close()
