"""IPAM: an address is never handed out twice, also after re-opening the store."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portside.network.errors import AddressInUse, AddressPoolExhausted, NetworkExists
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
