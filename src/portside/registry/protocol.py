"""Parsing of the distribution protocol's inputs: routes, names, references, ranges.

Everything here is pure and raises `RegistryError` with the spec's code for bad input,
so the handlers never see a malformed value and fuzzing can target these functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from portside.oci import digest as digests
from portside.registry.errors import RegistryError

# distribution-spec, "Pulling manifests": <name> and <reference> grammars.
NAME_RE = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*")
TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
UPLOAD_ID_RE = re.compile(r"[0-9a-f]{32}")
MAX_NAME = 255
MAX_PAGE = 10000
_DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII only: str.isdigit() also takes '²'

# Routes under /v2/, longest suffix first; the name is everything before the suffix.
_ROUTES = [
    ("uploads", re.compile(r"(?P<name>.+)/blobs/uploads/?(?P<id>[^/]*)")),
    ("blob", re.compile(r"(?P<name>.+)/blobs/(?P<id>[^/]+)")),
    ("manifest", re.compile(r"(?P<name>.+)/manifests/(?P<id>[^/]+)")),
    ("tags", re.compile(r"(?P<name>.+)/tags/list")),
    ("referrers", re.compile(r"(?P<name>.+)/referrers/(?P<id>[^/]+)")),
]


@dataclass(frozen=True)
class Route:
    kind: str  # base | catalog | uploads | blob | manifest | tags | referrers
    name: str = ""
    id: str = ""


def parse_route(tail: str) -> Route | None:
    """Split the path after `/v2/` into a route; None when it names no endpoint."""
    if tail == "":
        return Route("base")
    if tail == "_catalog":
        return Route("catalog")
    for kind, pattern in _ROUTES:
        m = pattern.fullmatch(tail)
        if m:
            return Route(kind, validate_name(m["name"]), m["id"] if "id" in m.groupdict() else "")
    return None


def validate_name(name: str) -> str:
    if len(name) > MAX_NAME or not NAME_RE.fullmatch(name):
        raise RegistryError("NAME_INVALID", f"invalid repository name {name[:300]!r}")
    return name


def is_digest(reference: str) -> bool:
    return ":" in reference


def validate_reference(reference: str) -> str:
    """A tag or a digest; anything else is refused (MANIFEST_INVALID / DIGEST_INVALID)."""
    if is_digest(reference):
        return validate_digest(reference)
    if not TAG_RE.fullmatch(reference):
        raise RegistryError("MANIFEST_INVALID", f"invalid tag {reference[:200]!r}")
    return reference


def validate_digest(digest: str) -> str:
    if not digests.is_valid(digest):
        raise RegistryError("DIGEST_INVALID", f"invalid digest {digest[:200]!r}")
    return digest


def validate_upload_id(upload_id: str) -> str:
    if not UPLOAD_ID_RE.fullmatch(upload_id):
        raise RegistryError("BLOB_UPLOAD_UNKNOWN", f"unknown upload {upload_id[:100]!r}")
    return upload_id


def parse_content_range(value: str) -> tuple[int, int]:
    """`start-end` (inclusive; the spec's form, an optional `bytes ` prefix and `/total`)."""
    text = value.strip()
    text = text.removeprefix("bytes").strip() if text.startswith("bytes") else text
    text = text.partition("/")[0]
    start_s, sep, end_s = text.partition("-")
    if not sep or not _DIGITS.fullmatch(start_s) or not _DIGITS.fullmatch(end_s):
        raise RegistryError("BLOB_UPLOAD_INVALID", f"malformed Content-Range {value[:80]!r}", status=416)
    start, end = int(start_s), int(end_s)
    if end < start:
        raise RegistryError("BLOB_UPLOAD_INVALID", f"empty Content-Range {value[:80]!r}", status=416)
    return start, end


def parse_page(n: str | None, last: str | None) -> tuple[int | None, str]:
    """The `n` and `last` query parameters of tag and catalog listings."""
    count: int | None = None
    if n is not None:
        if not _DIGITS.fullmatch(n) or len(n) > 9:
            raise RegistryError("UNSUPPORTED", f"invalid page size n={n[:20]!r}", status=400)
        count = min(int(n), MAX_PAGE)
    return count, last or ""


def next_link(path: str, n: int, last: str) -> str:
    """The RFC 5988 `Link` header pointing at the next page."""
    return f'<{path}?n={n}&last={quote(last, safe="")}>; rel="next"'


def parse_scope(scope: str) -> tuple[str, str, set[str]] | None:
    """`repository:team/app:pull,push` -> ("repository", "team/app", {"pull","push"})."""
    kind, _, rest = scope.partition(":")
    name, sep, actions = rest.rpartition(":")
    if not sep or kind not in ("repository", "registry") or not name:
        return None
    return kind, name, {a for a in actions.split(",") if a}
