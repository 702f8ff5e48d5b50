"""Where portside keeps its state: one root directory (`PORTSIDE_ROOT` overrides)."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_ROOT = Path("/var/lib/portside")


def root() -> Path:
    return Path(os.environ.get("PORTSIDE_ROOT") or DEFAULT_ROOT)
