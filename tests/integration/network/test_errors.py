"""Bad input: one-line errors, nothing half-configured left on the host."""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from portside.network.errors import (
    AddressInUse,
    AlreadyAttached,
    InvalidNetworkArgument,
    NetworkExists,
    NetworkInUse,
    NetworkNotFound,
    NotAttached,
    SubnetOverlap,
)
from portside.network.manager import NetworkManager

from .conftest import host_address, run_in


def _one_line(err: pytest.ExceptionInfo[Exception]) -> str:
    text = str(err.value)
    assert "\n" not in text and text
    return text


def test_subnet_overlaps(manager: NetworkManager) -> None:
    manager.create("pst-a", subnet="10.210.50.0/24")
    with pytest.raises(SubnetOverlap) as err:
        manager.create("pst-b", subnet="10.210.50.128/25")
    assert "overlaps with network pst-a" in _one_line(err)
    host_net = ipaddress.ip_interface(
        subprocess.run(["ip", "-o", "-4", "addr", "show", "to", host_address()],
                       capture_output=True, text=True).stdout.split()[3]).network
    with pytest.raises(SubnetOverlap, match="host interface"):
        manager.create("pst-c", subnet=str(host_net))
    with pytest.raises(NetworkExists):
        manager.create("pst-a", subnet="10.210.51.0/24")
    assert [n.name for n in manager.networks()] == ["bridge", "pst-a"]


def test_network_errors(manager: NetworkManager, netns: Callable[[], Path]) -> None:
    net = manager.create("pst-e", subnet="10.210.52.0/24")
    ns, other = netns(), netns()
    with pytest.raises(NetworkNotFound) as nf:
        manager.attach("a" * 64, ns, "pst-nope")
    assert _one_line(nf) == "network pst-nope not found"
    with pytest.raises(InvalidNetworkArgument, match="alias"):
        manager.attach("a" * 64, ns, "pst-e", aliases=["bad alias!"])
    with pytest.raises(InvalidNetworkArgument, match="not in subnet"):
        manager.attach("a" * 64, ns, "pst-e", ip="10.210.99.5")
    assert "eth0" not in run_in(ns, "ip", "-o", "link").stdout

    att = manager.attach("a" * 64, ns, "pst-e", ip="10.210.52.77")
    assert att.ip == "10.210.52.77"
    assert "10.210.52.77/24" in run_in(ns, "ip", "-o", "addr").stdout
    with pytest.raises(AddressInUse) as used:
        manager.attach("b" * 64, other, "pst-e", ip="10.210.52.77")
    assert "10.210.52.77" in _one_line(used)
    with pytest.raises(AlreadyAttached):
        manager.attach("a" * 64, ns, "pst-e")
    with pytest.raises(NetworkInUse) as busy:
        manager.remove("pst-e")
    assert "a" * 12 in _one_line(busy)
    with pytest.raises(InvalidNetworkArgument, match="pre-defined"):
        manager.remove("bridge")
    with pytest.raises(NotAttached):
        manager.detach("b" * 64, other, "pst-e")
    manager.detach("a" * 64, ns, "pst-e")
    assert manager.remove(net.id[:12]).name == "pst-e"
    with pytest.raises(NetworkNotFound):
        manager.get("pst-e")


def test_prune_removes_only_unused(manager: NetworkManager, netns: Callable[[], Path]) -> None:
    manager.create("pst-used", subnet="10.210.53.0/24", labels={"team": "a"})
    manager.create("pst-idle", subnet="10.210.54.0/24", labels={"team": "a"})
    manager.create("pst-other", subnet="10.210.55.0/24", labels={"team": "b"})
    manager.attach("u" * 64, netns(), "pst-used")
    assert manager.prune({"team": "a"}) == ["pst-idle"]
    assert manager.prune() == ["pst-other"]
    assert [n.name for n in manager.networks()] == ["bridge", "pst-used"]
