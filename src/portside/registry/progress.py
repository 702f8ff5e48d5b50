"""Per-layer progress of pushes and pulls: rich bars on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
from typing import Any, Protocol


class Progress(Protocol):
    def start(self, key: str, total: int) -> None: ...
    def advance(self, key: str, amount: int) -> None: ...
    def done(self, key: str, status: str) -> None: ...
    def close(self) -> None: ...


class Quiet:
    """No output (--quiet, library use)."""

    def start(self, key: str, total: int) -> None:
        pass

    def advance(self, key: str, amount: int) -> None:
        pass

    def done(self, key: str, status: str) -> None:
        pass

    def close(self) -> None:
        pass


class Plain(Quiet):
    """One line per layer when it is finished, as `docker push` prints without a TTY."""

    def done(self, key: str, status: str) -> None:
        print(f"{key[7:19] if key.startswith('sha256:') else key}: {status}", flush=True)


class Bars:
    """A rich progress bar per layer: bytes, rate, time left."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as RichProgress

        self._progress = RichProgress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), TimeRemainingColumn(), transient=False,
        )
        self._tasks: dict[str, Any] = {}
        self._totals: dict[str, int] = {}
        self._progress.start()

    def _name(self, key: str) -> str:
        return key[7:19] if key.startswith("sha256:") else key

    def start(self, key: str, total: int) -> None:
        self._tasks[key] = self._progress.add_task(self._name(key), total=total)
        self._totals[key] = total

    def advance(self, key: str, amount: int) -> None:
        if key in self._tasks:
            self._progress.advance(self._tasks[key], amount)

    def done(self, key: str, status: str) -> None:
        if key not in self._tasks:
            self.start(key, 0)
        task = self._tasks[key]
        self._progress.update(task, description=f"{self._name(key)}: {status}",
                              completed=self._totals.get(key, 0))

    def close(self) -> None:
        self._progress.stop()


def for_terminal(quiet: bool) -> Progress:
    if quiet:
        return Quiet()
    if sys.stdout.isatty():
        return Bars()
    return Plain()
