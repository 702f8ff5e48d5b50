"""Build progress: one line per step with its cache status and time.

`plain` writes lines to stderr (what CI logs want), `tty` the same with rich's colours
(rich is imported only then), `quiet` nothing. The image id goes to stdout either way.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO


class Progress:
    def __init__(self, mode: str = "auto", stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "tty" if self.stream.isatty() else "plain"
        if mode not in ("plain", "tty", "quiet"):
            from portside.errors import InvalidArgument

            raise InvalidArgument(f"unknown --progress {mode!r}: use plain, tty or quiet")
        self.mode = mode
        self.count = 0
        self.statuses: dict[str, int] = {}
        self._console: Any = None
        if mode == "tty":
            from rich.console import Console

            self._console = Console(file=self.stream, highlight=False)

    def plan(self, steps: int) -> None:
        """The number of steps the build will report (its stages' FROMs and instructions),
        told once the target's stages are known. This output numbers steps as they come."""

    def cancelled(self) -> bool:
        """Whether whoever watches the build has given up on it (the daemon's client left):
        a running RUN step is then stopped. Never, for the command line."""
        return False

    def step(
        self,
        label: str,
        text: str,
        status: str,
        seconds: float,
        *,
        ident: str = "",
        written: str = "",
    ) -> None:
        """Report a finished step: `#3 [build 2/5] COPY . /app  CACHED 0.0s`.

        `ident` names what the step produced (its cache key; the base image's id for a FROM)
        and `written` is the instruction as the Dockerfile has it, for outputs that show
        them (the Docker Engine API's classic build stream); this one shows `text`."""
        self.count += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if self.mode == "quiet":
            return
        shown = text if len(text) <= 100 else text[:99] + "…"
        timing = f"{seconds:.1f}s"
        if self._console is not None:
            from rich.markup import escape

            style = {"CACHED": "cyan", "DONE": "green", "RESOLVED": "blue"}.get(status, "white")
            self._console.print(
                f"[dim]#{self.count}[/dim] [bold]{escape(label)}[/bold] "
                f"{escape(shown)}  [{style}]{status}[/{style}] [dim]{timing}[/dim]"
            )
        else:
            print(f"#{self.count} {label} {shown}  {status} {timing}", file=self.stream, flush=True)

    def running(self, label: str, text: str) -> None:
        """A step whose output is about to stream (RUN)."""
        self.note(f"#{self.count + 1} {label} {text}")

    def note(self, text: str) -> None:
        if self.mode == "quiet":
            return
        if self._console is not None:
            from rich.markup import escape

            self._console.print(escape(text))
        else:
            print(text, file=self.stream, flush=True)

    def output(self, text: str) -> None:
        """A line of RUN output, streamed as it comes."""
        if self.mode != "quiet":
            print(f"  {text}", file=self.stream, flush=True)
