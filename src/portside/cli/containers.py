"""Container commands that run things: `run`, `create`, `start`, `attach`, `exec`.

Each is a client of the daemon's Docker Engine API. Exit codes follow Docker's: `run`
passes the container's status through, 125 when the daemon fails, 126 when the command
cannot be invoked, 127 when it is not found.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from portside.cli.runcore import (
    _daemon_error,
    attach_and_start,
    create_container,
    run_container,
    start_container,
)
from portside.cli.runflags import run_flags
from portside.client.transport import Client
from portside.errors import PortsideError

__all__ = ["attach_and_start", "create_container", "start_container"]

NO_INTERSPERSED = {"allow_interspersed_args": False}


@click.command("run", context_settings=NO_INTERSPERSED)
@click.option("-d", "--detach", is_flag=True, help="Run in the background; print the id.")
@run_flags
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def run(detach: bool, image: str, command: tuple[str, ...], **kw: Any) -> None:
    """Create and start a container (attached unless -d)."""
    sys.exit(run_container(detach, image, list(command), kw))


@click.command("create", context_settings=NO_INTERSPERSED)
@run_flags
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def create(image: str, command: tuple[str, ...], **kw: Any) -> None:
    """Create a container without starting it; print its id."""
    click.echo(create_container(Client(), image, command, kw))


@click.command("start")
@click.option("-a", "--attach", is_flag=True, help="Attach stdout/stderr and wait.")
@click.option("-i", "--interactive", is_flag=True, help="Attach stdin.")
@click.argument("containers", nargs=-1, required=True)
def start(attach: bool, interactive: bool, containers: tuple[str, ...]) -> None:
    """Start one or more stopped containers."""
    client = Client()
    if attach or interactive:
        if len(containers) != 1:
            raise click.UsageError("you cannot attach to more than one container")
        info = client.get(f"/containers/{containers[0]}/json")
        sys.exit(attach_and_start(client, info["Id"], info["Config"]["Tty"], interactive,
                                  False))
    failed = 0
    for name in containers:
        try:
            start_container(client, name)
            click.echo(name)
        except PortsideError as exc:
            click.echo(f"Error response from daemon: {exc}", err=True)
            failed = exc.exit_code
    if failed:
        sys.exit(failed)


@click.command("attach")
@click.option("--no-stdin", is_flag=True, help="Do not attach stdin.")
@click.argument("container")
def attach(no_stdin: bool, container: str) -> None:
    """Attach to a running container's output (and input); exit with its status."""
    from portside.cli.streaming import Session

    client = Client()
    info = client.get(f"/containers/{container}/json")
    if not info["State"]["Running"]:
        raise _daemon_error(PortsideError("You cannot attach to a stopped container,"
                                          " start it first"), 1)
    cid, tty = info["Id"], bool(info["Config"]["Tty"])
    stdin = bool(info["Config"]["OpenStdin"]) and not no_stdin
    sock, first = client.hijack(f"/containers/{cid}/attach", {
        "stream": 1, "stdout": 1, "stderr": 1, "stdin": 1 if stdin else 0})

    def resize(rows: int, cols: int) -> None:
        client.request("POST", f"/containers/{cid}/resize", {"h": rows, "w": cols}).read()

    session = Session(sock, first, tty, stdin, resize)
    session.run()
    if session.detached:
        return
    result = client.post(f"/containers/{cid}/wait")
    sys.exit(int(result.get("StatusCode", 0)))


@click.command("exec", context_settings=NO_INTERSPERSED)
@click.option("-d", "--detach", is_flag=True, help="Run the command in the background.")
@click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY.")
@click.option("-e", "--env", multiple=True, help="Set environment variables.")
@click.option("-u", "--user", default="", help="name|uid[:group|gid].")
@click.option("-w", "--workdir", default="", help="Working directory.")
@click.option("--privileged", is_flag=True, help="Extended privileges for the command.")
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(detach: bool, interactive: bool, tty: bool, env: tuple[str, ...], user: str,
          workdir: str, privileged: bool, container: str, command: tuple[str, ...]) -> None:
    """Run a command in a running container; exit with its status."""
    import os

    from portside.cli.streaming import Session, terminal_size
    from portside.engine.options import parse_env

    client = Client()
    created = client.post(f"/containers/{container}/exec", {
        "AttachStdin": interactive and not detach, "AttachStdout": not detach,
        "AttachStderr": not detach, "Tty": tty, "Cmd": list(command),
        "Env": parse_env(list(env), os.environ), "User": user, "WorkingDir": workdir,
        "Privileged": privileged})
    exec_id = created["Id"]
    if detach:
        client.request("POST", f"/exec/{exec_id}/start", body={"Detach": True}).read()
        return
    size = terminal_size() if tty else None
    sock, first = client.hijack(f"/exec/{exec_id}/start", body={
        "Detach": False, "Tty": tty, **({"ConsoleSize": list(size)} if size else {})})

    def resize(rows: int, cols: int) -> None:
        client.request("POST", f"/exec/{exec_id}/resize", {"h": rows, "w": cols}).read()

    session = Session(sock, first, tty, interactive, resize)
    session.run()
    if session.detached:
        return
    info = client.get(f"/exec/{exec_id}/json")
    sys.exit(int(info.get("ExitCode") or 0))
