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


class Forbidden(PortsideError):
    """The caller may not ask this (not root, not on the daemon's host...)."""

    http_status = 403


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


# -- errors across the daemon's socket --
# The daemon's JSON error body carries Docker's `message` and, beside it, the class and its
# facts, so a portside client raises the same class with the same attributes (and exit code)
# as the in-process engine would. Docker clients read `message` only.

WIRE_KEY = "portside"


def _plain(value: object) -> bool:
    if value is None or isinstance(value, str | int | float | bool):
        return True
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def to_wire(exc: PortsideError) -> dict[str, object]:
    """The JSON error body for `exc`: `{"message", "portside": {"class", "facts"}}`."""
    cls = type(exc)
    facts = {k: v for k, v in vars(exc).items() if not k.startswith("_") and _plain(v)}
    return {"message": str(exc),
            WIRE_KEY: {"class": f"{cls.__module__}:{cls.__qualname__}", "facts": facts}}


def from_wire(body: object) -> PortsideError | None:
    """The error a daemon's JSON error body describes, as its own class with its facts;
    None when the body does not name a portside error class."""
    if not isinstance(body, dict) or not isinstance(body.get(WIRE_KEY), dict):
        return None
    wire = body[WIRE_KEY]
    module, _, qualname = str(wire.get("class", "")).partition(":")
    if not (module == "portside" or module.startswith("portside.")) or not qualname:
        return None  # only our own classes are ever imported
    import importlib

    try:
        found: object = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        return None
    if not (isinstance(found, type) and issubclass(found, PortsideError)):
        return None
    err = found.__new__(found)
    Exception.__init__(err, str(body.get("message", "")))
    facts = wire.get("facts")
    if isinstance(facts, dict):
        for key, value in facts.items():
            if isinstance(key, str) and not key.startswith("_") and (
                    key not in ("exit_code", "http_status") or type(value) is int):
                setattr(err, key, value)
    return err
