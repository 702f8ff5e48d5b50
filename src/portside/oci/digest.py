"""Content digests (OCI image spec, "Digests"): `algorithm:encoded`."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from portside.errors import InvalidDigest

# Registered algorithms and their encoded forms (image-spec descriptor.md, "Registered algorithms").
_ENCODED = {
    "sha256": re.compile(r"[a-f0-9]{64}"),
    "sha512": re.compile(r"[a-f0-9]{128}"),
}


def validate(digest: str, where: str = "") -> str:
    """Return `digest` if it is a well-formed sha256/sha512 digest, else raise InvalidDigest."""
    algorithm, sep, encoded = digest.partition(":") if isinstance(digest, str) else ("", "", "")
    pattern = _ENCODED.get(algorithm)
    if not sep or pattern is None or not pattern.fullmatch(encoded):
        raise InvalidDigest(str(digest), where)
    return digest


def is_valid(digest: str) -> bool:
    try:
        validate(digest)
    except InvalidDigest:
        return False
    return True


def hasher(digest_or_algorithm: str = "sha256") -> Any:
    """A fresh hashlib object for the algorithm of a digest (or an algorithm name)."""
    return hashlib.new(digest_or_algorithm.partition(":")[0])


def of_bytes(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def encoded(digest: str) -> str:
    """The hex part of a digest, as used in blob paths."""
    return validate(digest).partition(":")[2]


def short_id(digest: str) -> str:
    """The 12-character id Docker shows for images and containers."""
    return digest.partition(":")[2][:12]
