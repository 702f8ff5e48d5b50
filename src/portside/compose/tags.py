"""The Compose spec's YAML merge tags: `!reset` drops a value, `!override` replaces it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Override:
    """`!override value`: replaces what earlier files set instead of merging with it."""

    value: Any


@dataclass(frozen=True)
class Reset:
    """`!reset`: removes what earlier files set for this key."""

    value: Any = None
