"""The private DNS server of a container with --dns: its names and its records."""

from __future__ import annotations

from pathlib import Path

from portside.network.resolver import ContainerResolvers, DnsSettings, private_hosts
from portside.network.store import Attachment


def _att(cid: str, net: str, ip: str, name: str, aliases: tuple[str, ...] = ()) -> Attachment:
    return Attachment(container_id=cid * 64, network=net, network_id=net, ip=ip, prefix=24,
                      gateway=ip.rsplit(".", 1)[0] + ".1", container_name=name,
                      aliases=list(aliases), dns_servers=[ip.rsplit(".", 1)[0] + ".1"])


def test_only_the_containers_networks_first_network_wins() -> None:
    me_a = _att("a", "front", "10.213.1.2", "me")
    me_b = _att("a", "back", "10.213.2.2", "me")
    db_a = _att("b", "front", "10.213.1.3", "db", ("store",))
    db_b = _att("b", "back", "10.213.2.3", "db")
    cache_b = _att("c", "back", "10.213.2.4", "cache", ("store",))
    other = _att("d", "elsewhere", "10.213.3.2", "secret")
    everyone = [me_a, me_b, db_a, db_b, cache_b, other]
    lines = private_hosts([me_a, me_b], everyone)
    text = "\n".join(lines)
    assert "secret" not in text  # a network this container is not on
    assert f"10.213.1.3\tdb store {'b' * 12}" in lines  # front (first) answers db, store
    assert not any(line.startswith("10.213.2.3") for line in lines)  # db: front's only
    assert "10.213.2.4\tcache " + "c" * 12 in lines  # store taken on front
    # the other order: back first
    lines = private_hosts([me_b, me_a], everyone)
    assert f"10.213.2.3\tdb {'b' * 12}" in lines and "10.213.2.4\tcache store " + "c" * 12 \
        in lines


def test_one_alias_on_several_containers_of_a_network_answers_all() -> None:
    me = _att("a", "n", "10.213.1.2", "me")
    w1 = _att("b", "n", "10.213.1.3", "w1", ("web",))
    w2 = _att("c", "n", "10.213.1.4", "w2", ("web",))
    lines = private_hosts([me], [me, w1, w2])
    assert sum("web" in line.split() for line in lines) == 2


def test_settings_are_kept_only_when_given(tmp_path: Path) -> None:
    r = ContainerResolvers(tmp_path / "resolvers")
    r.configure("x" * 64, DnsSettings())
    assert not (tmp_path / "resolvers").exists()  # plain containers: no file at all
    r.configure("y" * 64, DnsSettings(("10.213.9.1",), ("example.org",), ("ndots:2",)))
    assert r.settings("y" * 64) == DnsSettings(("10.213.9.1",), ("example.org",), ("ndots:2",))
    assert r.settings("x" * 64) == DnsSettings()
    assert r.containers() == {"y" * 64} and r.has("y" * 64)
    r.sync([])  # no DNS network: nothing starts
    assert r.running() == []
    r.forget("y" * 64)
    assert r.containers() == set() and r.settings("y" * 64) == DnsSettings()
