"""Errors of the network layer, each one line naming the network, address or port at fault."""

from __future__ import annotations

from portside.errors import Conflict, InvalidArgument, NotFound, PortsideError


class InvalidNetworkArgument(InvalidArgument):
    """A malformed subnet, port spec, alias, address or network name."""


class PredefinedNetwork(InvalidNetworkArgument):
    """bridge, host and none cannot be removed; Docker answers 403 Forbidden."""

    http_status = 403

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} is a pre-defined network and cannot be removed")


class NetworkNotFound(NotFound):
    def __init__(self, ref: str) -> None:
        super().__init__(f"network {ref} not found")
        self.ref = ref


class NetworkExists(Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(f"network with name {name} already exists")


class NetworkInUse(Conflict):
    def __init__(self, name: str, containers: list[str]) -> None:
        ids = ", ".join(c[:12] if len(c) == 64 else c for c in containers)
        super().__init__(f"error while removing network: network {name} has active endpoints"
                         f" ({ids})")


class SubnetOverlap(Conflict):
    def __init__(self, subnet: str, other: str) -> None:
        super().__init__(f"subnet {subnet} overlaps with {other}")


class AddressInUse(Conflict):
    def __init__(self, ip: str, network: str) -> None:
        super().__init__(f"address {ip} is already in use on network {network}")


class AddressPoolExhausted(Conflict):
    def __init__(self, network: str, subnet: str) -> None:
        super().__init__(f"no free address left in {subnet} of network {network}")


class PortInUse(Conflict):
    def __init__(self, host_ip: str, port: int, proto: str, holder: str) -> None:
        where = f"{host_ip or '0.0.0.0'}:{port}/{proto}"
        super().__init__(f"Bind for {where} failed: port is already allocated ({holder})")
        self.port = port


class AlreadyAttached(Conflict):
    def __init__(self, container: str, network: str) -> None:
        super().__init__(f"container {container[:12]} is already attached to network {network}")


class NotAttached(NotFound):
    def __init__(self, container: str, network: str) -> None:
        super().__init__(f"container {container[:12]} is not attached to network {network}")


class NetworkSetupFailed(PortsideError):
    """netavark (or the kernel behind it) refused; nothing of the attachment is kept."""

    def __init__(self, action: str, network: str, message: str) -> None:
        msg = " ".join(message.split()) or "unknown error"
        super().__init__(f"{action} network {network}: {msg}")
