"""Errors in a compose project: each names the file, the key path and what is wrong."""

from __future__ import annotations

from collections.abc import Sequence

from portside.errors import InvalidArgument

KeyPath = Sequence[str | int]


def dotted(path: KeyPath) -> str:
    """`("services", "web", "ports", 1)` -> `services.web.ports[1]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class ComposeError(InvalidArgument):
    """A compose file is unreadable, malformed or inconsistent; nothing has been started."""

    def __init__(self, file: str, path: KeyPath | str, message: str) -> None:
        where = path if isinstance(path, str) else dotted(path)
        parts = [p for p in (file, where) if p]
        super().__init__(": ".join([*parts, message]))
        self.file = file
        self.path = where
        self.detail = message
