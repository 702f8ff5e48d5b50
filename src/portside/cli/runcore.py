"""`run` without click: create, attach, wait, start, stream; the exit status.

Shared by the click commands (`containers.run`, `create`, `start -a`, `compose run`) and
the fast path of `portside run` (`fastrun`), which must not import click. The calls go to
a `RunCalls` (the engine interface's narrow one for this path): `portside run` gives the
import-light `portside.client.runpath.RunPath`, the others `portside.cli.engine.run_calls`
of their engine. Exit codes follow Docker's: the container's status, 125 when the daemon
refuses, 126 when the command cannot be invoked, 127 when it is not found.
"""

from __future__ import annotations

import sys

from portside.cli.runspec import build_body
from portside.client.runpath import RunPath
from portside.engine.errors import StartFailed
from portside.errors import PortsideError

TYPE_CHECKING = False  # typing costs milliseconds to import on `run`'s hot path
if TYPE_CHECKING:
    from typing import Any

    from portside.engine.interface import RunCalls


def _daemon_error(exc: PortsideError, code: int = 125) -> PortsideError:
    exc.exit_code = code
    return exc


def create_container(api: RunCalls, image: str, command: tuple[str, ...],
                     kw: dict[str, Any]) -> str:
    body = build_body(image, command, kw)
    try:
        cid, warnings = api.create(body, kw.get("name") or "")
    except PortsideError as exc:
        raise _daemon_error(exc) from None
    for warning in warnings:
        sys.stderr.write(f"WARNING: {warning}\n")
    return cid


def start_container(api: RunCalls, cid: str) -> None:
    try:
        api.start(cid)
    except StartFailed:
        raise  # its exit code (127 not found, 126 not executable) comes from the engine
    except PortsideError as exc:
        raise _daemon_error(exc) from None


def attach_and_start(api: RunCalls, cid: str, tty: bool, interactive: bool,
                     auto_remove: bool, start: bool = True) -> int:
    """Attach, register a wait, start; stream until the output ends; the exit status."""
    from portside.cli.streaming import Session

    sock, first = api.attach(cid, interactive)
    result = api.begin_wait(cid, "removed" if auto_remove else "next-exit")
    if start:
        try:
            start_container(api, cid)
        except PortsideError:
            sock.close()
            raise

    def resize(rows: int, cols: int) -> None:
        api.resize(cid, rows, cols)

    session = Session(sock, first, tty, interactive, resize)
    session.run()
    if session.detached:
        return 0
    code, error = result()
    if error:
        sys.stderr.write(f"Error: {error}\n")
    return code


def run_container(detach: bool, image: str, command: list[str], kw: dict[str, Any],
                  api: RunCalls | None = None) -> int:
    """`portside run`: the exit status (0 with -d, after printing the id). Without `api`,
    the import-light calls over the daemon's socket."""
    if api is None:
        api = RunPath()
    cid = create_container(api, image, tuple(command), kw)
    if detach:
        start_container(api, cid)
        sys.stdout.write(cid + "\n")
        return 0
    return attach_and_start(api, cid, kw["tty"], kw["interactive"], kw["auto_remove"])
