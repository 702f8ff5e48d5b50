"""Errors a user can cause or act on.

Each carries the facts a user needs in its message; the CLI prints it as one line and
exits with `exit_code`, the daemon maps it to an HTTP status once.
"""

from __future__ import annotations


class PortsideError(Exception):
    """Base of every error that is reported to the user without a traceback."""

    exit_code = 1
    http_status = 500


class InvalidArgument(PortsideError):
    """Input from the user or a peer is malformed."""

    exit_code = 2
    http_status = 400


class NotFound(PortsideError):
    """A named thing (image, blob, container, network...) does not exist."""

    http_status = 404


class Conflict(PortsideError):
    """The operation clashes with the current state (name in use, image in use...)."""

    http_status = 409


class InvalidDigest(InvalidArgument):
    def __init__(self, digest: str, where: str = "") -> None:
        place = f" in {where}" if where else ""
        super().__init__(f"invalid digest {digest!r}{place}")


class DigestMismatch(PortsideError):
    """Content does not hash to the digest it was announced with."""

    http_status = 400

    def __init__(self, expected: str, actual: str, where: str = "") -> None:
        place = f"{where}: " if where else ""
        super().__init__(f"{place}digest mismatch: expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


class SizeMismatch(PortsideError):
    http_status = 400

    def __init__(self, expected: int, actual: int, where: str = "") -> None:
        place = f"{where}: " if where else ""
        super().__init__(f"{place}size mismatch: expected {expected} bytes, got {actual}")


class BlobUnknown(NotFound):
    def __init__(self, digest: str, where: str = "") -> None:
        place = f" ({where})" if where else ""
        super().__init__(f"blob {digest} not found{place}")
        self.digest = digest


class ImageUnknown(NotFound):
    def __init__(self, reference: str) -> None:
        super().__init__(f"image {reference!r} not found")
        self.reference = reference


class UnsafeLayer(PortsideError):
    """A layer tries to escape its snapshot or exhaust the host; nothing of it is kept."""

    http_status = 400

    def __init__(self, layer: str, entry: str, reason: str) -> None:
        super().__init__(f"layer {layer}: refusing entry {entry!r}: {reason}")
        self.layer = layer
        self.entry = entry
        self.reason = reason
