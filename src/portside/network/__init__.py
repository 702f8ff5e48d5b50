"""Container networking on one host: bridge networks, IPAM, published ports, names.

`NetworkManager` is the surface the engine calls (create/remove networks, attach/detach
a container's network namespace); the CNI plugins or netavark do the kernel work,
dnsmasq the names (dns.py, resolver.py).
"""

from __future__ import annotations

from portside.network.files import write_container_files
from portside.network.manager import DEFAULT_NETWORK, NetworkManager, new_netns
from portside.network.netns import NETNS_DIR, create_netns, delete_netns
from portside.network.ports import PortMapping, parse_publish, parse_publish_all, publish_all
from portside.network.store import Attachment, Network

__all__ = [
    "DEFAULT_NETWORK",
    "NETNS_DIR",
    "Attachment",
    "Network",
    "NetworkManager",
    "PortMapping",
    "create_netns",
    "delete_netns",
    "new_netns",
    "parse_publish",
    "parse_publish_all",
    "publish_all",
    "write_container_files",
]
