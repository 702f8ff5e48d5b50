"""Short syntaxes: ports, volumes, durations, sizes, extra hosts."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portside.compose import syntax

ports = st.integers(1, 65535)


def test_ports() -> None:
    assert syntax.parse_port("80") == [{"target": 80, "published": None, "host_ip": None,
                                        "protocol": "tcp", "mode": "ingress"}]
    assert syntax.parse_port(80)[0]["target"] == 80
    [p] = syntax.parse_port("127.0.0.1:8080:80/udp")
    assert (p["host_ip"], p["published"], p["target"], p["protocol"]) == (
        "127.0.0.1", "8080", 80, "udp")
    [p] = syntax.parse_port("[::1]:8080:80")
    assert p["host_ip"] == "::1"
    [p] = syntax.parse_port("127.0.0.1::80")
    assert p["published"] is None and p["host_ip"] == "127.0.0.1"
    assert [(p["published"], p["target"]) for p in syntax.parse_port("8000-8002:90-92")] == [
        ("8000", 90), ("8001", 91), ("8002", 92)]
    assert [p["published"] for p in syntax.parse_port("9000-9009:80")] == ["9000-9009"]
    assert [p["target"] for p in syntax.parse_port("3000-3001")] == [3000, 3001]


@pytest.mark.parametrize("spec", ["80:80:80", "0", "x", "80:", "1-2:1-3", "a:80:80",
                                  "80/icmp", "65536", "1:2:3:4", "5-3"])
def test_bad_ports(spec: str) -> None:
    with pytest.raises(ValueError, match="invalid port"):
        syntax.parse_port(spec)


@given(ports, ports, st.sampled_from(["tcp", "udp", "sctp"]))
def test_port_round_trip(published: int, target: int, proto: str) -> None:
    [p] = syntax.parse_port(f"{published}:{target}/{proto}")
    assert (p["published"], p["target"], p["protocol"]) == (str(published), target, proto)


@given(st.text(max_size=20))
def test_port_parser_only_raises_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        syntax.parse_port(text)


def test_volumes() -> None:
    assert syntax.parse_volume("/data") == {"type": "volume", "target": "/data"}
    assert syntax.parse_volume("db:/var/lib/db:ro,nocopy") == {
        "type": "volume", "source": "db", "target": "/var/lib/db", "read_only": True,
        "volume": {"nocopy": True}}
    assert syntax.parse_volume("./html:/www:z") == {
        "type": "bind", "source": "./html", "target": "/www",
        "bind": {"selinux": "z", "create_host_path": True}}
    assert syntax.parse_volume("~/x:/x")["type"] == "bind"


@pytest.mark.parametrize("spec", ["", "a:b:c:d", "data:rel", "bad name:/x", "/a:/b:bogus"])
def test_bad_volumes(spec: str) -> None:
    with pytest.raises(ValueError, match="invalid volume"):
        syntax.parse_volume(spec)


@pytest.mark.parametrize("text,seconds", [
    ("30s", 30), ("1m30s", 90), ("1h", 3600), ("500ms", 0.5), ("1.5s", 1.5), (10, 10),
    ("10", 10), ("2h3m4s", 7384)])
def test_durations(text: str | int, seconds: float) -> None:
    assert syntax.parse_duration(text) == pytest.approx(seconds)


@given(st.integers(0, 10 ** 6))
def test_duration_round_trip(seconds: int) -> None:
    assert syntax.parse_duration(syntax.format_duration(seconds)) == seconds


@pytest.mark.parametrize("text,size", [("512m", 512 << 20), ("1g", 1 << 30), ("100kb", 102400),
                                       ("4096", 4096), (7, 7), ("1.5k", 1536), ("2GB", 2 << 30)])
def test_sizes(text: str | int, size: int) -> None:
    assert syntax.parse_bytes(text) == size


def test_extra_hosts() -> None:
    assert syntax.parse_extra_host("db:10.0.0.2") == ("db", "10.0.0.2")
    assert syntax.parse_extra_host("db=::1") == ("db", "::1")
    assert syntax.parse_extra_host("gw:host-gateway") == ("gw", "host-gateway")
    with pytest.raises(ValueError):
        syntax.parse_extra_host("db")
