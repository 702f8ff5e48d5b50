"""The service balancer's pure parts: slot tables, VIP leases, the table text, DNS lines."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from portside.network import lbtable
from portside.network.balancer import Backend, ServiceEndpoint, ServicePort
from portside.network.services import dns_lines
from portside.network.servicestore import ServiceRecord, ServiceStore
from portside.network.store import Network, NetworkStore
from portside.state.memory import MemoryBackend

_addresses = st.lists(st.integers(2, 254).map(lambda n: f"10.0.0.{n}"), max_size=12,
                      unique=True)


@given(_addresses, _addresses)
def test_slots_are_even_and_keep_staying_backends(before: list[str], after: list[str]) -> None:
    old = lbtable.assign([], before)
    new = lbtable.assign(old, after)
    assert len(new) == lbtable.SLOTS
    if not after:
        assert set(new) == {""}
        return
    counts = Counter(new)
    assert set(counts) == set(after)
    assert max(counts.values()) - min(counts.values()) <= 1
    # a backend that stays keeps as many of its slots as its new share allows
    for a in set(before) & set(after):
        kept = sum(1 for o, n in zip(old, new, strict=True) if o == n == a)
        assert kept == min(Counter(old)[a], counts[a])


def _net(nid: str, subnet: str = "10.9.0.0/29") -> Network:
    return Network(id=nid, name=f"n-{nid}", driver="bridge", bridge=f"br{nid}", subnet=subnet,
                   gateway=subnet.rsplit(".", 1)[0] + ".1", internal=False, dns_enabled=True,
                   created="1")


def test_vips_are_leased_once_kept_and_released() -> None:
    backend = MemoryBackend()
    NetworkStore(backend).add_network(net := _net("n1"))
    store = ServiceStore(backend)
    a = store.save(ServiceRecord(ServiceEndpoint("s1", "web", ("n1",))), [net])
    b = store.save(ServiceRecord(ServiceEndpoint("s2", "api", ("n1",))), [net])
    assert a.vips["n1"] != b.vips["n1"]
    again = store.save(ServiceRecord(ServiceEndpoint("s1", "web", ("n1",))), [net])
    assert again.vips == a.vips  # kept across applies
    assert backend.get(f"ipam/n1/{a.vips['n1']}").value == b"service:s1"  # type: ignore[union-attr]
    store.delete("s1")
    assert backend.get(f"ipam/n1/{a.vips['n1']}") is None
    assert store.get("s1") is None and store.get("s2") is not None
    dnsrr = store.save(ServiceRecord(ServiceEndpoint("s3", "rr", ("n1",), mode="dnsrr")), [net])
    assert dnsrr.vips == {}


def test_ruleset_has_a_chain_per_port_and_elements_for_healthy_slots() -> None:
    ep = ServiceEndpoint("s1", "web", ("n1",), ports=(ServicePort(80, published=8080),
                                                      ServicePort(53, "udp")))
    rec = ServiceRecord(ep, {"n1": "10.9.0.2"}, {"n1": lbtable.assign([], ["10.9.0.3"])})
    text = lbtable.ruleset("t", [rec])
    chain = lbtable.port_chain("s1", "n1", "tcp", 80)
    assert f"10.9.0.2 . tcp . 80 : goto {chain}" in text
    assert f"tcp . 8080 : goto {chain}" in text
    assert "10.9.0.2 . udp . 53" in text
    assert text.count("10.9.0.3") == lbtable.SLOTS


def test_dns_lines_for_vip_and_dnsrr() -> None:
    backends = (Backend("t1", "n1", "10.9.0.3"), Backend("t2", "n1", "10.9.0.4", healthy=False))
    vip = ServiceRecord(ServiceEndpoint("s1", "web", ("n1",), backends=backends,
                                        aliases=("www",)), {"n1": "10.9.0.2"})
    rr = ServiceRecord(ServiceEndpoint("s2", "rr", ("n1",), mode="dnsrr", backends=backends))
    lines = dns_lines([vip, rr], {"n1"})
    assert "10.9.0.2\tweb www" in lines
    assert {"10.9.0.3\ttasks.web", "10.9.0.4\ttasks.web"} <= set(lines)
    assert "10.9.0.3\trr" in lines and "10.9.0.4\trr" not in lines
    assert dns_lines([vip], set()) == []  # a network without DNS answers nothing
