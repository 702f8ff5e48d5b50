"""Docker's container networking fields -> our plan: modes, endpoints, port bindings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portside.network.containers import plan, port_bindings, port_mappings
from portside.network.docker import network_settings, port_lines, ports_doc
from portside.network.errors import InvalidNetworkArgument
from portside.network.ports import PortMapping, parse_publish
from portside.network.store import Attachment


def test_modes() -> None:
    assert plan({}, {}).mode == "bridge"
    assert [e.network for e in plan({}, {"NetworkMode": "default"}).endpoints] == ["bridge"]
    docker_run = plan({}, {"NetworkMode": "default"}, {"EndpointsConfig": {"default": {}}})
    assert [e.network for e in docker_run.endpoints] == ["bridge"]  # what `docker run` sends
    assert plan({}, {"NetworkMode": "host", "PortBindings": {"80/tcp": None}}).mode == "host"
    assert plan({}, {"NetworkMode": "none"}).endpoints == []
    p = plan({}, {"NetworkMode": "container:web"})
    assert (p.mode, p.container) == ("container", "web")


def test_user_network_with_aliases_ip_and_a_second_network() -> None:
    p = plan({}, {"NetworkMode": "appnet"}, {"EndpointsConfig": {
        "appnet": {"Aliases": ["database"], "IPAMConfig": {"IPv4Address": "10.89.5.7"}},
        "other": {}}})
    assert [(e.network, e.aliases, e.ip) for e in p.endpoints] == [
        ("appnet", ["database"], "10.89.5.7"), ("other", [], None)]


def test_port_bindings_and_publish_all() -> None:
    hc = {"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                           "443/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8443"}],
                           "53/udp": [{"HostPort": ""}],
                           "90/tcp": [{"HostPort": "9000-9010"}]},
          "PublishAllPorts": True}
    got = port_mappings({"ExposedPorts": {"80/tcp": {}, "7000/tcp": {}}}, hc)
    assert got == [PortMapping("", 8080, 80), PortMapping("127.0.0.1", 8443, 443),
                   PortMapping("", 0, 53, "udp"), PortMapping("", 9000, 90, host_port_end=9010),
                   PortMapping("", 0, 7000)]
    with pytest.raises(InvalidNetworkArgument):
        port_mappings({}, {"PortBindings": {"80/tcp": [{"HostPort": "http"}]}})


specs = st.sampled_from(["80", "8080:80", "127.0.0.1:8443:443/tcp", "53:53/udp",
                         "9000-9001:90-91", "127.0.0.1::5000", "7000-7010:70"])


@given(st.lists(specs, max_size=4, unique=True))
def test_bindings_round_trip(chosen: list[str]) -> None:
    mappings = [m for s in chosen for m in parse_publish(s)]
    exposed, bindings = port_bindings(mappings)
    assert set(exposed) == {m.docker_key() for m in mappings}
    assert sorted(port_mappings({}, {"PortBindings": bindings}), key=str) == sorted(
        mappings, key=str)


def test_inspect_shapes() -> None:
    att = Attachment(container_id="c" * 64, network="bridge", network_id="n" * 64,
                     ip="172.17.0.2", prefix=16, gateway="172.17.0.1", mac="02:42:ac:11:00:02",
                     ports=[PortMapping("", 8080, 80), PortMapping("127.0.0.1", 8443, 443)])
    s = network_settings([att], exposed=["80/tcp", "9000/tcp"])
    assert s["IPAddress"] == "172.17.0.2" and s["Networks"]["bridge"]["Gateway"] == "172.17.0.1"
    assert s["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
                          "9000/tcp": None,
                          "443/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8443"}]}
    assert port_lines(att.ports) == ["80/tcp -> 0.0.0.0:8080", "443/tcp -> 127.0.0.1:8443"]
    assert port_lines(att.ports, "443") == ["443/tcp -> 127.0.0.1:8443"]
    assert ports_doc([]) == {}
