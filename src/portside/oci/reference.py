"""Image references as Docker writes them: `[registry[:port]/]repo/path[:tag][@digest]`.

References are normalised the way Docker does (`busybox` is `docker.io/library/busybox:latest`)
and shown in their familiar short form, so a user's habits carry over.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from portside.errors import InvalidArgument
from portside.oci import digest as digests

DEFAULT_DOMAIN = "docker.io"
DEFAULT_TAG = "latest"
_OFFICIAL = "library/"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_DOMAIN_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(
    rf"(?:{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
)
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}")
_MAX_NAME = 255


class InvalidReference(InvalidArgument):
    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"invalid reference {text!r}: {reason}")


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """`domain/path`: the full name without tag or digest."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_repository(self) -> str:
        """The repository as Docker prints it (`busybox`, `myorg/app`, `host:5000/app`)."""
        if self.domain != DEFAULT_DOMAIN:
            return self.repository
        return self.path.removeprefix(_OFFICIAL)

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.domain, self.path, tag, None)

    def with_default_tag(self) -> Reference:
        if self.tag is None and self.digest is None:
            return self.with_tag(DEFAULT_TAG)
        return self

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def familiar(self) -> str:
        text = self.familiar_repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse(text: str) -> Reference:
    """Parse and normalise a reference; a bare name gets no tag (see `with_default_tag`)."""
    if not text or len(text) > 4096:
        raise InvalidReference(text[:80], "empty or too long")
    rest, at, digest = text.partition("@")
    if at:
        try:
            digests.validate(digest)
        except InvalidArgument:
            raise InvalidReference(text, f"bad digest {digest!r}") from None
    # A tag is after the last colon that follows the last slash (a colon before a slash is a port).
    tag: str | None = None
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG_RE.fullmatch(tag):
            raise InvalidReference(text, f"bad tag {tag!r}")
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain, path = first, remainder
        if not _DOMAIN_RE.fullmatch(domain):
            raise InvalidReference(text, f"bad registry {domain!r}")
    else:
        domain, path = DEFAULT_DOMAIN, rest
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = _OFFICIAL + path
    if not _PATH_RE.fullmatch(path):
        raise InvalidReference(
            text, "repository names are lowercase letters, digits and separators (. _ __ -)"
        )
    if len(f"{domain}/{path}") > _MAX_NAME:
        raise InvalidReference(text, f"repository name longer than {_MAX_NAME} characters")
    return Reference(domain, path, tag, digest or None)


def parse_tagged(text: str) -> Reference:
    """Parse a reference for naming an image: `latest` when no tag is given, no digest."""
    ref = parse(text)
    if ref.digest:
        raise InvalidReference(text, "a digest cannot be used as a tag")
    return ref.with_default_tag()
