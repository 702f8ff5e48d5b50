"""Docker's JSON progress messages for pulls and pushes, made from transfer progress.

dockerd streams one JSON object per line (`streamformatter`): `{"status": ..., "id": ...}`
per layer, with `progressDetail` `{current, total}` and a rendered `progress` bar while
bytes move. The registry transfer code reports per blob (`registry.progress.Progress`);
these adapters turn that into Docker's messages, naming layers as dockerd does (a pull by
the blob digest's 12 characters, a push by the diff_id's) and leaving the config blob out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from portside.oci import digest as digests

Message = dict[str, Any]
Emit = Callable[[Message], None]

BAR_WIDTH = 50
EVERY = 0.1  # seconds between two progress messages of one layer, as dockerd throttles them
_UNITS = ("B", "kB", "MB", "GB", "TB", "PB")


def human_size(size: float) -> str:
    """go-units' HumanSize: decimal units, four significant digits (`1.234MB`)."""
    i = 0
    while size >= 1000 and i < len(_UNITS) - 1:
        size /= 1000
        i += 1
    return f"{size:.4g}{_UNITS[i]}"


def bar(current: int, total: int) -> str:
    """The `progress` string of a JSON message: `[=====>     ]  1.2MB/3.4MB`."""
    if total <= 0:
        return human_size(current)
    filled = min(BAR_WIDTH, int(BAR_WIDTH * current / total))
    arrow = ">" if filled < BAR_WIDTH else "="
    inner = ("=" * max(0, filled - 1) + arrow if filled else "").ljust(BAR_WIDTH)
    return f"[{inner}] {human_size(current).rjust(8)}/{human_size(total)}"


def status(text: str, ident: str | None = None, detail: bool = False) -> Message:
    msg: Message = {"status": text}
    if detail:
        msg["progressDetail"] = {}
    if ident is not None:
        msg["id"] = ident
    return msg


def error(message: str) -> Message:
    return {"errorDetail": {"message": message}, "error": message}


class _Layers:
    """Per-layer byte counts and throttling shared by both directions (called from the
    transfer's event loop; a lock keeps it safe should blobs move on worker threads)."""

    def __init__(self, emit: Emit, names: dict[str, str], moving: str) -> None:
        self.emit = emit
        self.names = names  # blob digest -> id shown; blobs not listed (the config) are silent
        self.moving = moving
        self.totals: dict[str, int] = {}
        self.current: dict[str, int] = {}
        self.shown: dict[str, float] = {}
        self.lock = threading.Lock()

    def start(self, key: str, total: int) -> None:
        with self.lock:
            self.totals[key] = total
            self.current[key] = 0

    def advance(self, key: str, amount: int) -> None:
        name = self.names.get(key)
        with self.lock:
            done = self.current[key] = self.current.get(key, 0) + amount
            total = self.totals.get(key, 0)
            now = time.monotonic()
            if name is None or (now - self.shown.get(key, 0.0) < EVERY and done < total):
                return
            self.shown[key] = now
        self.emit({"status": self.moving, "progressDetail": {"current": done, "total": total},
                   "progress": bar(done, total), "id": name})

    def close(self) -> None:
        pass


class PullProgress(_Layers):
    """`Pulling fs layer`, `Downloading`, `Verifying Checksum`, `Download complete`,
    `Pull complete` (or `Already exists`) per layer."""

    def __init__(self, emit: Emit, layers: Iterable[str]) -> None:
        super().__init__(emit, {d: digests.short_id(d) for d in layers}, "Downloading")

    def announce(self, present: Callable[[str], bool]) -> None:
        for digest, name in self.names.items():
            if not present(digest):
                self.emit(status("Pulling fs layer", name, detail=True))

    def done(self, key: str, text: str) -> None:
        name = self.names.get(key)
        if name is None:
            return
        if text == "Pull complete":
            for step in ("Verifying Checksum", "Download complete"):
                self.emit(status(step, name, detail=True))
        self.emit(status(text, name, detail=True))


class PushProgress(_Layers):
    """`Preparing`, `Pushing`, then `Pushed`, `Layer already exists` or `Mounted from x`."""

    def __init__(self, emit: Emit, layers: dict[str, str]) -> None:
        super().__init__(emit, {d: digests.short_id(diff) for d, diff in layers.items()},
                         "Pushing")

    def announce(self) -> None:
        for name in self.names.values():
            self.emit(status("Preparing", name, detail=True))

    def done(self, key: str, text: str) -> None:
        name = self.names.get(key)
        if name is not None:
            self.emit(status(text, name, detail=True))
