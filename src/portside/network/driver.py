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
    """What one netavark call configures: a container on one network."""

    container_id: str
    container_name: str
    network: Network
    ip: str
    interface: str = "eth0"
    ports: tuple[PortMapping, ...] = ()

    def document(self) -> dict[str, Any]:
        """netavark's network-options document (podman's `types.NetworkOptions`)."""
        net = self.network
        options = {"isolate": "true", **{k: v for k, v in net.options.items()
                                         if k in ("mtu", "metric")}}
        return {
            "container_id": self.container_id,
            "container_name": self.container_name,
            "port_mappings": [
                {"host_ip": p.host_ip, "container_port": p.container_port,
                 "host_port": p.host_port, "range": 1, "protocol": p.proto}
                for p in self.ports] or None,
            "networks": {net.name: {
                "static_ips": [self.ip],
                "interface_name": self.interface,
            }},
            "network_info": {net.name: {
                "name": net.name,
                "id": net.id,
                "driver": "bridge",
                "network_interface": net.bridge,
                "subnets": [{"subnet": net.subnet, "gateway": net.gateway}],
                "ipv6_enabled": False,
                "internal": net.internal,
                "dns_enabled": False,  # names are served by our dnsmasq (dns.py)
                "ipam_options": {"driver": "host-local"},
                "options": options,
            }},
        }



class Driver(Protocol):
    manages_firewall: bool

    def setup(self, netns: str, ep: Endpoint) -> dict[str, Any]: ...

    def teardown(self, netns: str, ep: Endpoint) -> None: ...

    def teardown_without_netns(self, ep: Endpoint) -> None: ...

    def network_gone(self, net: Network) -> None: ...
