"""`run` without click: create, attach, wait, start, stream; the exit status.

Shared by the click command (`containers.run`) and the fast path of `portside run`
(`fastrun`), which must not import click. Exit codes follow Docker's: the container's
status, 125 when the daemon refuses, 126 when the command cannot be invoked, 127 when it
is not found.
"""

from __future__ import annotations

import sys

from portside.cli.runspec import build_body
from portside.client.transport import Client
from portside.engine.errors import StartFailed
from portside.errors import PortsideError

TYPE_CHECKING = False  # typing costs milliseconds to import on `run`'s hot path
if TYPE_CHECKING:
    from typing import Any


def _daemon_error(exc: PortsideError, code: int = 125) -> PortsideError:
    exc.exit_code = code
    return exc


def create_container(client: Client, image: str, command: tuple[str, ...],
                     kw: dict[str, Any]) -> str:
    body = build_body(image, command, kw)
    try:
        created = client.post("/containers/create", body, name=kw.get("name") or None)
    except PortsideError as exc:
        raise _daemon_error(exc) from None
    for warning in created.get("Warnings") or []:
        sys.stderr.write(f"WARNING: {warning}\n")
    return str(created["Id"])


def start_container(client: Client, cid: str) -> None:
    try:
        client.request("POST", f"/containers/{cid}/start").read()
    except StartFailed:
        raise  # its exit code (127 not found, 126 not executable) comes from the engine
    except PortsideError as exc:
        raise _daemon_error(exc) from None


def attach_and_start(client: Client, cid: str, tty: bool, interactive: bool,
                     auto_remove: bool, start: bool = True) -> int:
    """Attach, register a wait, start; stream until the output ends; the exit status."""
    from portside.cli.streaming import Session
    from portside.client import wirejson as json

    sock, first = client.hijack(f"/containers/{cid}/attach",
                                {"stream": 1, "stdout": 1, "stderr": 1,
                                 "stdin": 1 if interactive else 0})
    waiter = client.request("POST", f"/containers/{cid}/wait",
                            {"condition": "removed" if auto_remove else "next-exit"})
    if start:
        try:
            start_container(client, cid)
        except PortsideError:
            sock.close()
            raise

    def resize(rows: int, cols: int) -> None:
        client.request("POST", f"/containers/{cid}/resize", {"h": rows, "w": cols}).read()

    session = Session(sock, first, tty, interactive, resize)
    session.run()
    if session.detached:
        return 0
    result = json.loads(waiter.read() or b"{}")
    if result.get("Error") and result["Error"].get("Message"):
        sys.stderr.write(f"Error: {result['Error']['Message']}\n")
    return int(result.get("StatusCode", 0))


def run_container(detach: bool, image: str, command: list[str], kw: dict[str, Any]) -> int:
    """`portside run`: the exit status (0 with -d, after printing the id)."""
    client = Client()
    cid = create_container(client, image, tuple(command), kw)
    if detach:
        start_container(client, cid)
        sys.stdout.write(cid + "\n")
        return 0
    return attach_and_start(client, cid, kw["tty"], kw["interactive"], kw["auto_remove"])
