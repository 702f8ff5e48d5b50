"""`wait` conditions (not-running, next-exit, removed) as futures resolved by the engine."""

from __future__ import annotations

import asyncio
from typing import Any

from portside.engine.state import Container
from portside.errors import InvalidArgument

CONDITIONS = ("not-running", "next-exit", "removed", "")


def result(c: Container) -> dict[str, Any]:
    """Docker's wait response: {StatusCode, Error{Message}|null}."""
    err = {"Message": c.state["Error"]} if c.state.get("Error") else None
    return {"StatusCode": int(c.state["ExitCode"]), "Error": err}


class Waiters:
    def __init__(self) -> None:
        self.pending: dict[str, list[tuple[str, asyncio.Future[dict[str, Any]]]]] = {}

    def register(self, c: Container, condition: str) -> asyncio.Future[dict[str, Any]]:
        """A future resolved with the wait response when `condition` is met."""
        if condition not in CONDITIONS:
            raise InvalidArgument(f"invalid condition: {condition!r}")
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if condition in ("not-running", "") and not c.running and not c.state["Restarting"]:
            fut.set_result(result(c))
            return fut
        self.pending.setdefault(c.id, []).append((condition or "not-running", fut))
        return fut

    def notify(self, c: Container, removed: bool = False) -> None:
        """The container exited (or was removed): resolve whoever waits for that."""
        keep = []
        for condition, fut in self.pending.pop(c.id, []):
            if fut.done():
                continue
            if condition == "removed" and not removed:
                keep.append((condition, fut))
            else:
                fut.set_result(result(c))
        if keep and not removed:
            self.pending[c.id] = keep
