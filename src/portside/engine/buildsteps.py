"""portside's build progress over the build stream (the `steps=1` extension of `POST /build`).

The classic builder's messages (`Step 2/5 : RUN make`) cannot say a step's cache status or
time, which `portside build` shows. With `steps=1` the daemon sends each call the builder
makes on its progress as one message, `{"portsideStep": {"call": "step", "args": [...]}}`,
and the client replays it on its own progress (`replay`), so the command prints what it
printed when it built in its own process. The image id still comes as `{"aux": {"ID"}}`.
Light on purpose: the client imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from portside.build.output import Progress
from portside.engine.interface import BuildProgress

KEY = "portsideStep"

Message = dict[str, Any]


def message(call: str, *args: Any) -> Message:
    return {KEY: {"call": call, "args": list(args)}}


def replay(msg: Message, progress: BuildProgress) -> bool:
    """Play a step message on `progress`; False when `msg` is not one."""
    body = msg.get(KEY)
    if not isinstance(body, dict):
        return False
    call, args = body.get("call"), body.get("args") or []
    if call == "step" and len(args) == 4:
        progress.step(str(args[0]), str(args[1]), str(args[2]), float(args[3]))
    elif call == "running" and len(args) == 2:
        progress.running(str(args[0]), str(args[1]))
    elif call == "plan" and len(args) == 1:
        progress.plan(int(args[0]))
    elif call in ("note", "output") and len(args) == 1:
        getattr(progress, call)(str(args[0]))
    return True


class StepOutput(Progress):
    """The daemon's side: every progress call becomes its message, sent by `emit` (the base
    class keeps the counts the builder's result reads)."""

    def __init__(self, emit: Callable[[Message], None],
                 cancelled: Callable[[], bool] = lambda: False) -> None:
        super().__init__("quiet")
        self._emit = emit
        self._cancelled = cancelled

    def cancelled(self) -> bool:
        return self._cancelled()

    def plan(self, steps: int) -> None:
        self._emit(message("plan", steps))

    def step(self, label: str, text: str, status: str, seconds: float, *, ident: str = "",
             written: str = "") -> None:
        super().step(label, text, status, seconds, ident=ident, written=written)
        self._emit(message("step", label, text, status, round(seconds, 3)))

    def running(self, label: str, text: str) -> None:
        self._emit(message("running", label, text))

    def note(self, text: str) -> None:
        self._emit(message("note", text))

    def output(self, text: str) -> None:
        self._emit(message("output", text))

    def failed(self) -> None:
        """Nothing is held back: the error message follows."""

    def finish(self, image_id: str) -> None:
        self._emit({"aux": {"ID": image_id}})
