"""Subnet parsing, overlap detection and picking from a pool."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portside.network import subnets
from portside.network.errors import InvalidNetworkArgument, SubnetOverlap


@pytest.mark.parametrize("text", ["10.1.2.3/24", "300.1.0.0/16", "fd00::/64", "10.0.0.0/31",
                                  "nonsense", ""])
def test_bad_subnets(text: str) -> None:
    with pytest.raises(InvalidNetworkArgument):
        subnets.parse_subnet(text)


@given(st.ip_addresses(v=4), st.integers(8, 30))
def test_parse_accepts_every_network(addr: ipaddress.IPv4Address, prefix: int) -> None:
    net = ipaddress.IPv4Network(f"{addr}/{prefix}", strict=False)
    assert subnets.parse_subnet(str(net)) == net


def test_gateway_and_address_must_be_hosts_of_the_subnet() -> None:
    net = subnets.parse_subnet("10.210.0.0/24")
    assert str(subnets.parse_gateway("10.210.0.254", net)) == "10.210.0.254"
    for bad in ("10.210.1.1", "10.210.0.0", "10.210.0.255", "x"):
        with pytest.raises(InvalidNetworkArgument):
            subnets.parse_gateway(bad, net)
        with pytest.raises(InvalidNetworkArgument):
            subnets.parse_address(bad, net, "n")


def test_overlap_names_the_other_side() -> None:
    taken = [(ipaddress.IPv4Network("10.210.0.0/16"), "network appnet")]
    with pytest.raises(SubnetOverlap, match="10.210.5.0/24 overlaps with network appnet"):
        subnets.check_overlap(ipaddress.IPv4Network("10.210.5.0/24"), taken)
    subnets.check_overlap(ipaddress.IPv4Network("10.211.0.0/24"), taken)


@given(st.lists(st.integers(0, 255), max_size=40))
def test_pick_never_overlaps(used: list[int]) -> None:
    taken = [(ipaddress.IPv4Network(f"10.89.{n}.0/24"), "x") for n in used]
    picked = subnets.pick_subnet(subnets.candidates("10.89.0.0/16", 24), taken)
    assert not any(picked.overlaps(t) for t, _ in taken)


def test_host_networks_sees_the_hosts_addresses() -> None:
    nets = subnets.host_networks()
    assert all(isinstance(n, ipaddress.IPv4Network) for n, _ in nets)
