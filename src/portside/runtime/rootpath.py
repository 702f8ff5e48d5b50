"""Resolve a path inside a container root the way the container would see it: symlinks
(absolute or relative, `..`) never lead outside the root."""

from __future__ import annotations

import os
from pathlib import Path

_MAX_LINKS = 40


def resolve_in_root(root: Path, path: str) -> Path:
    """The host path of `path` inside `root`, following symlinks as if `root` were `/`.

    Missing trailing components are allowed (the result may not exist yet).
    """
    root = Path(root)
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        try:
            target = os.readlink(candidate)
        except OSError:
            resolved.append(part)
            continue
        links += 1
        if links > _MAX_LINKS:
            raise OSError(40, "too many levels of symbolic links", str(path))
        if target.startswith("/"):
            resolved = []
        parts = [p for p in target.split("/") if p not in ("", ".")] + parts
    return root.joinpath(*resolved)
