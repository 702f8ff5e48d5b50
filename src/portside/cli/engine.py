"""Where the CLI gets its engine: the one place that chooses an implementation.

Today that is the daemon behind its socket (`RemoteEngine`, which starts it when it is
absent). `run_calls` gives `runcore`'s few calls over any engine, for the commands that
share `run`'s attach-and-wait logic (`create`, `start -a`, `compose run`); `portside run`
itself takes the import-light `portside.client.runpath` instead.
"""

from __future__ import annotations

from collections.abc import Callable

from portside.client.remote import RemoteEngine
from portside.engine.interface import (
    ContainersAPI,
    CreateOptions,
    Document,
    EngineAPI,
    RunCalls,
    Stream,
)
from portside.orchestrator.interface import ServicesAPI, SwarmAPI


def engine() -> EngineAPI:
    """The engine the commands talk to."""
    return RemoteEngine()


def orchestrator() -> tuple[ServicesAPI, SwarmAPI]:
    """The daemon's services and its (single-node) swarm, for `service` and `stack`."""
    from portside.client.services import RemoteServices, RemoteSwarm
    from portside.client.transport import Client

    client = Client()
    return RemoteServices(client), RemoteSwarm(client)


class _EngineRun:
    """`RunCalls` over an engine's containers."""

    def __init__(self, containers: ContainersAPI) -> None:
        self.containers = containers

    def create(self, body: Document, name: str = "") -> tuple[str, list[str]]:
        created = self.containers.create(CreateOptions(body=body, name=name))
        return created.id, created.warnings

    def start(self, ref: str) -> None:
        self.containers.start(ref)

    def attach(self, ref: str, stdin: bool) -> tuple[Stream, bytes]:
        return self.containers.attach(ref, stdin=stdin)

    def begin_wait(self, ref: str, condition: str) -> Callable[[], tuple[int, str]]:
        pending = self.containers.begin_wait(ref, condition)

        def result() -> tuple[int, str]:
            done = pending()
            return done.status_code, done.error

        return result

    def resize(self, ref: str, rows: int, cols: int) -> None:
        self.containers.resize(ref, rows, cols)


def run_calls(engine: EngineAPI) -> RunCalls:
    """The calls of `runcore` (create, start, attach, wait, resize) over `engine`."""
    return _EngineRun(engine.containers)
