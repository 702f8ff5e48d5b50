"""`-p` / `-P` parsing: Docker's syntax, round-trips, and one-line errors for bad specs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portside.network.errors import InvalidNetworkArgument
from portside.network.ports import (
    PortMapping,
    check_no_duplicates,
    parse_publish,
    parse_publish_all,
    publish_all,
)

ports = st.integers(min_value=1, max_value=65535)
protos = st.sampled_from(["tcp", "udp", "sctp"])
ips = st.ip_addresses(v=4).map(str)


@pytest.mark.parametrize("spec, expected", [
    ("80", [PortMapping("", 0, 80)]),
    ("8080:80", [PortMapping("", 8080, 80)]),
    ("127.0.0.1:8443:443/tcp", [PortMapping("127.0.0.1", 8443, 443)]),
    ("127.0.0.1::80", [PortMapping("127.0.0.1", 0, 80)]),
    ("0.0.0.0:53:53/udp", [PortMapping("", 53, 53, "udp")]),
    ("5000-5001:6000-6001/udp", [PortMapping("", 5000, 6000, "udp"),
                                 PortMapping("", 5001, 6001, "udp")]),
    ("8000-8010:80", [PortMapping("", 8000, 80, host_port_end=8010)]),
    ("90-91", [PortMapping("", 0, 90), PortMapping("", 0, 91)]),
    ("80/TCP", [PortMapping("", 0, 80)]),
])
def test_docker_forms(spec: str, expected: list[PortMapping]) -> None:
    assert parse_publish(spec) == expected


@pytest.mark.parametrize("spec", [
    "", "abc", "0:80", "80:0", "70000:80", "8080:80/icmp", "1.2.3:80:80", "1:2:3:4",
    "8000-8001:80-82", "90-80", "[::1]:80:80", "[::1:80:80", "8080:",
])
def test_bad_specs_are_one_line_errors(spec: str) -> None:
    with pytest.raises(InvalidNetworkArgument) as err:
        parse_publish(spec)
    assert "\n" not in str(err.value)


@given(ip=st.one_of(st.just(""), ips), host=ports, ctr=ports, proto=protos)
def test_round_trip(ip: str, host: int, ctr: int, proto: str) -> None:
    prefix = f"{ip}:" if ip else ""
    [m] = parse_publish(f"{prefix}{host}:{ctr}/{proto}")
    expected_ip = "" if ip == "0.0.0.0" else ip
    assert m == PortMapping(expected_ip, host, ctr, proto)


@given(start=st.integers(1, 65000), cstart=st.integers(1, 65000), n=st.integers(0, 20))
def test_ranges_pair_up(start: int, cstart: int, n: int) -> None:
    got = parse_publish(f"{start}-{start + n}:{cstart}-{cstart + n}")
    assert [(m.host_port, m.container_port) for m in got] == [
        (start + i, cstart + i) for i in range(n + 1)]


@given(st.text(max_size=30))
def test_garbage_never_crashes(text: str) -> None:
    try:
        parse_publish(text)
    except InvalidNetworkArgument as err:
        assert "\n" not in str(err)


def test_same_host_port_twice_is_refused() -> None:
    with pytest.raises(InvalidNetworkArgument, match="published twice"):
        parse_publish_all(["8080:80", "8080:81"])
    # different addresses or protocols may share a port number
    check_no_duplicates(parse_publish("127.0.0.1:8080:80") + parse_publish("127.0.0.2:8080:81"))
    check_no_duplicates(parse_publish("8080:80") + parse_publish("8080:80/udp"))


def test_publish_all_from_exposed_ports() -> None:
    got = publish_all({"80/tcp": {}, "53/udp": {}, "7000-7001": {}})
    assert got == [PortMapping("", 0, 80), PortMapping("", 0, 53, "udp"),
                   PortMapping("", 0, 7000), PortMapping("", 0, 7001)]
