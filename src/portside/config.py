"""Where portside keeps its state: one root directory (`PORTSIDE_ROOT` overrides)."""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

DEFAULT_ROOT_DIR = "/var/lib/portside"


def root_dir() -> str:
    """The root as a string: the hot path of `portside run` does not import pathlib."""
    return os.environ.get("PORTSIDE_ROOT") or DEFAULT_ROOT_DIR


def root() -> Path:
    from pathlib import Path

    return Path(root_dir())
