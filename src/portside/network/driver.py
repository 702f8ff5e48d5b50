"""The driver interface: what wires one container endpoint into the kernel.

Two implementations: `cni.CniBridge` (the default: the CNI bridge plugin plus our own
nftables table) and `netavark.Netavark` (Podman's stack, which keeps its own iptables
rules; `PORTSIDE_NETWORK_DRIVER=netavark`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from portside.network.ports import PortMapping
from portside.network.store import Network


@dataclass
class Endpoint:
    """What one driver call configures: a container on one network."""

    container_id: str
    container_name: str
    network: Network
    ip: str
    interface: str = "eth0"
    ports: tuple[PortMapping, ...] = ()


class Driver(Protocol):
    """Wires endpoints; `manages_firewall` False means the manager's nftables table does
    NAT, ports and isolation (firewall.py)."""

    manages_firewall: bool

    def setup(self, netns: str, ep: Endpoint) -> dict[str, Any]: ...

    def teardown(self, netns: str, ep: Endpoint) -> None: ...

    def teardown_without_netns(self, ep: Endpoint) -> None: ...

    def network_gone(self, net: Network) -> None: ...
