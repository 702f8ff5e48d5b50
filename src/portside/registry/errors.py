"""The distribution spec's error codes, mapped once to HTTP statuses and JSON bodies.

Every failure the server answers is a `RegistryError` carrying a spec code
(distribution-spec, "Error Codes"); `from_exception` maps the project's own errors
(bad digest, digest mismatch, unknown blob, bad document) onto those codes, so handlers
can simply raise.
"""

from __future__ import annotations

import json
from typing import Any

from portside.errors import (
    BlobUnknown,
    DigestMismatch,
    InvalidArgument,
    InvalidDigest,
    NotFound,
    PortsideError,
    SizeMismatch,
)

# code -> (HTTP status, default message), as listed in the spec.
CODES: dict[str, tuple[int, str]] = {
    "BLOB_UNKNOWN": (404, "blob unknown to registry"),
    "BLOB_UPLOAD_INVALID": (400, "blob upload invalid"),
    "BLOB_UPLOAD_UNKNOWN": (404, "blob upload unknown to registry"),
    "DIGEST_INVALID": (400, "provided digest did not match uploaded content"),
    "MANIFEST_BLOB_UNKNOWN": (404, "manifest references a manifest or blob unknown to registry"),
    "MANIFEST_INVALID": (400, "manifest invalid"),
    "MANIFEST_UNKNOWN": (404, "manifest unknown to registry"),
    "NAME_INVALID": (400, "invalid repository name"),
    "NAME_UNKNOWN": (404, "repository name not known to registry"),
    "SIZE_INVALID": (400, "provided length did not match content length"),
    "UNAUTHORIZED": (401, "authentication required"),
    "DENIED": (403, "requested access to the resource is denied"),
    "UNSUPPORTED": (405, "the operation is unsupported"),
    "TOOMANYREQUESTS": (429, "too many requests"),
    "RANGE_INVALID": (416, "invalid content range"),
}


class RegistryError(PortsideError):
    """An error answered to a registry client: a spec code, a message, an optional detail."""

    def __init__(
        self,
        code: str,
        message: str = "",
        detail: Any = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        default_status, default_message = CODES[code]
        self.code = code
        self.message = message or default_message
        self.detail = detail
        self.http_status = status or default_status
        self.headers = dict(headers or {})
        super().__init__(f"{code}: {self.message}")

    def body(self) -> bytes:
        entry: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            entry["detail"] = self.detail
        return json.dumps({"errors": [entry]}).encode()


def from_exception(exc: BaseException) -> RegistryError | None:
    """The spec error for one of the project's own errors, or None when it is not user input."""
    if isinstance(exc, RegistryError):
        return exc
    if isinstance(exc, InvalidDigest | DigestMismatch):
        return RegistryError("DIGEST_INVALID", str(exc))
    if isinstance(exc, SizeMismatch):
        return RegistryError("SIZE_INVALID", str(exc))
    if isinstance(exc, BlobUnknown):
        return RegistryError("BLOB_UNKNOWN", str(exc), {"digest": exc.digest})
    if isinstance(exc, NotFound):
        return RegistryError("NAME_UNKNOWN", str(exc))
    if isinstance(exc, InvalidArgument):
        return RegistryError("MANIFEST_INVALID", str(exc))
    return None


_STATUS_CODES = {401: "UNAUTHORIZED", 403: "DENIED", 429: "TOOMANYREQUESTS"}


class RemoteError(PortsideError):
    """A registry answered a client request with an error; the message names the registry."""

    def __init__(self, where: str, status: int, body: bytes = b"") -> None:
        self.status = status
        self.code = ""
        self.message = ""  # the registry's own message for `code`
        text = f"HTTP {status}"
        try:
            errors = json.loads(body).get("errors") or []
            if errors and isinstance(errors[0], dict):
                self.code = str(errors[0].get("code") or "")
                self.message = str(errors[0].get("message") or "")
                text = f"{self.code}: {self.message}".strip(": ")
        except (ValueError, AttributeError):
            pass
        if not self.code and status in _STATUS_CODES:  # a HEAD answer carries no body
            self.code = _STATUS_CODES[status]
            self.message = CODES[self.code][1]
            text = f"{self.code}: {self.message}"
        if self.code == "UNAUTHORIZED":
            text += " (log in with `portside login`)"
        super().__init__(f"{where}: {text}")
        if status == 404:
            self.exit_code = 1


class AuthFailed(RemoteError):
    """The registry refused the credentials (or the lack of them)."""

    exit_code = 1
