"""The values and errors of the engine's image service, typed, with Docker's wording.

Errors carry the facts (the reference, the registry's spec code) and their HTTP status, so
the API maps them once; the wording is dockerd's, so a docker client shows what it would.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Literal

from portside.errors import ImageUnknown, InvalidArgument, NotFound
from portside.oci import reference as refs
from portside.oci.model import Platform
from portside.registry.client import ConnectError
from portside.registry.errors import RemoteError

RemovedItem = tuple[Literal["Untagged", "Deleted"], str]


class NoSuchImage(ImageUnknown):
    """Docker's 404 for an image name or id the store does not have."""

    def __init__(self, ref: str) -> None:
        super().__init__(ref)
        self.args = (f"No such image: {_shown(ref)}",)


def _shown(ref: str) -> str:
    """dockerd names a missing image with its tag (`nope:latest`), an id as it was given."""
    bare = ref.removeprefix("sha256:")
    if ref.startswith("sha256:") or (len(bare) >= 12 and all(c in "0123456789abcdef" for c in bare)):
        return ref
    try:
        return refs.parse(ref).with_default_tag().familiar()
    except InvalidArgument:
        return ref


class NotTaggedLocally(NotFound):
    """A push of a repository with no local tag (dockerd's wording)."""

    def __init__(self, repository: str) -> None:
        super().__init__(f"An image does not exist locally with the tag: {repository}")
        self.repository = repository


class PullNotFound(NotFound):
    """The registry has no such repository or tag, or will not say to us (dockerd's wording:
    `manifest for x:1 not found: manifest unknown: ...`)."""

    def __init__(self, ref: refs.Reference, cause: RemoteError) -> None:
        spec = f"{cause.code.lower().replace('_', ' ')}: {cause.message}".strip(": ")
        if cause.code == "MANIFEST_UNKNOWN":
            text = f"manifest for {ref.familiar()} not found: {spec}"
        elif cause.code == "NAME_UNKNOWN":
            text = f"repository {ref.familiar_repository} not found: {spec}"
        else:
            text = (f"pull access denied for {ref.familiar_repository}, repository does not exist"
                    f" or may require 'docker login': {spec}")
        super().__init__(text)
        self.reference = ref
        self.code = cause.code


class RegistryFailure(NotFound):
    """Any other error answered by a registry, in Docker's `code: message` form."""

    def __init__(self, cause: RemoteError) -> None:
        if cause.code:
            text = f"{cause.code.lower().replace('_', ' ')}: {cause.message}".strip(": ")
        else:
            text = str(cause)
        super().__init__(text)
        self.http_status = 500 if isinstance(cause, ConnectError) else 404
        self.code = cause.code


@dataclass(frozen=True)
class RegistryAuth:
    """A Docker auth config (`X-Registry-Auth`): user name and password or an `auth` pair."""

    username: str = ""
    password: str = ""

    @classmethod
    def decode(cls, header: str) -> RegistryAuth | None:
        """From base64url JSON; None for an empty header or one without credentials."""
        if not header.strip():
            return None
        try:
            raw = base64.urlsafe_b64decode(header.strip() + "=" * (-len(header.strip()) % 4))
            doc = json.loads(raw)
        except (binascii.Error, ValueError) as exc:
            raise InvalidArgument(f"invalid X-Registry-Auth header: {exc}") from None
        if not isinstance(doc, dict):
            raise InvalidArgument("invalid X-Registry-Auth header: not a JSON object")
        user, password = str(doc.get("username") or ""), str(doc.get("password") or "")
        if not user and doc.get("auth"):
            try:
                user, _, password = base64.b64decode(str(doc["auth"])).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise InvalidArgument("invalid X-Registry-Auth header: bad 'auth'") from None
        return cls(user, password) if user else None

    def pair(self) -> tuple[str, str]:
        return self.username, self.password


@dataclass(frozen=True)
class HistoryEntry:
    id: str
    created: int
    created_by: str
    tags: list[str] | None
    size: int
    comment: str


@dataclass
class PruneFilters:
    """`/images/prune` filters: dangling (default true), until, label / label!."""

    dangling_only: bool = True
    until: float | None = None
    labels: list[str] = field(default_factory=list)
    not_labels: list[str] = field(default_factory=list)


@dataclass
class PruneReport:
    removed: list[RemovedItem] = field(default_factory=list)
    reclaimed: int = 0


def label_matches(labels: dict[str, str], spec: str) -> bool:
    key, sep, value = spec.partition("=")
    return key in labels and (not sep or labels[key] == value)


def parse_platform(text: str) -> Platform | None:
    """`linux/amd64[/v8]`, as `--platform` takes it; None for an empty string."""
    if not text:
        return None
    parts = text.strip().lower().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidArgument(f"invalid platform {text!r}: expected os/arch[/variant]")
    return Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else "")
