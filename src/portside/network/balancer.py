"""The service load balancer's interface: what the orchestrator asks of a host's network.

A service gets a virtual IP on each of its networks; connections to the VIP (and to the
service's published ports) are spread by nftables in the kernel over the addresses of its
*healthy* tasks (kube-proxy's nftables mode is the model), with no Python process on the
data path. DNS on those networks answers the service's name with its VIP (or, in `dnsrr`
mode, with every healthy task's address) and `tasks.<name>` with every task's address.

The orchestrator owns *which* backends a service has; this interface only makes the kernel
and DNS match, atomically, each time it is told. Every call is idempotent and can be
repeated after a daemon restart (`restore` brings back what the state backend records).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Backend:
    """One task's address on one of the service's networks."""

    task_id: str
    network: str  # network ID
    address: str  # the task container's IPv4 address on that network
    healthy: bool = True  # only healthy backends get new connections


@dataclass(frozen=True)
class ServicePort:
    """A port of the service (`EndpointSpec.Ports`)."""

    target: int
    protocol: str = "tcp"  # tcp | udp
    published: int | None = None  # on the host; None: reachable through the VIP only
    mode: str = "ingress"  # ingress (any host address) | host


@dataclass(frozen=True)
class ServiceEndpoint:
    """What a service looks like on the network: names, VIPs, ports and backends."""

    service_id: str
    name: str
    networks: Sequence[str]  # network IDs
    mode: str = "vip"  # vip | dnsrr
    ports: Sequence[ServicePort] = ()
    backends: Sequence[Backend] = ()
    aliases: Sequence[str] = field(default=())


class ServiceBalancer(Protocol):
    def apply(self, endpoint: ServiceEndpoint) -> dict[str, str]:
        """Make the kernel and DNS match `endpoint` in one transaction; the service's VIP
        on each of its networks (network ID -> address, allocated on first use and kept
        until `remove`). Empty in `dnsrr` mode."""
        ...

    def remove(self, service_id: str) -> None:
        """Forget the service: its VIPs, rules, map elements and names. Established
        connections to tasks that stay are not cut."""
        ...

    def restore(self) -> None:
        """At daemon start: rebuild the kernel state of every recorded service."""
        ...
