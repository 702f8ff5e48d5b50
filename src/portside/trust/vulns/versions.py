"""Each ecosystem's own version ordering, through the libraries that define it.

Debian: dpkg's ordering with epochs and `~` (python-debian's Version, which follows
deb-version(7)); PyPI: PEP 440 (packaging); npm and Go: semantic versioning (semver, Go's
leading `v` dropped). A version an ecosystem cannot parse gives None: the matcher then
falls back to the record's explicit `affected.versions` list only.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, Protocol


class Comparable(Protocol):
    def __lt__(self, other: Any, /) -> bool: ...
    def __le__(self, other: Any, /) -> bool: ...


Key = Callable[[str], Comparable | None]


@lru_cache(maxsize=65536)
def debian(text: str) -> Comparable | None:
    from debian.debian_support import Version

    try:
        version: Comparable = Version(text)
    except ValueError:
        return None
    return version


@lru_cache(maxsize=65536)
def pypi(text: str) -> Comparable | None:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text)
    except InvalidVersion:
        return None


@lru_cache(maxsize=65536)
def semantic(text: str) -> Comparable | None:
    import semver

    try:
        return semver.Version.parse(text.removeprefix("v"))
    except (ValueError, TypeError):
        return None


# OSV ecosystem (the part before any ":release") -> its ordering
ORDERINGS: dict[str, Key] = {
    "Debian": debian,
    "Ubuntu": debian,
    "PyPI": pypi,
    "npm": semantic,
    "Go": semantic,
}


@lru_cache(maxsize=262144)
def less(order: Key, a: str, b: str) -> bool | None:
    """a < b in `order` (None when either does not parse); cached, because real feeds
    repeat the same fixed versions across thousands of records."""
    va, vb = order(a), order(b)
    return None if va is None or vb is None else va < vb


def ordering(ecosystem: str) -> Key | None:
    return ORDERINGS.get(ecosystem.partition(":")[0])
