"""Container commands that run things: `run`, `create`, `start`, `attach`, `exec`.

Each is a client of the daemon's Docker Engine API. Exit codes follow Docker's: `run`
passes the container's status through, 125 when the daemon fails, 126 when the command
cannot be invoked, 127 when it is not found.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from portside.cli.engine import engine, run_calls
from portside.cli.runcore import (
    _daemon_error,
    attach_and_start,
    create_container,
    run_container,
    start_container,
)
from portside.cli.runflags import run_flags
from portside.engine.interface import ExecOptions, bool_at, str_at
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
    sys.exit(run_container(detach, image, list(command), kw, run_calls(engine())))


@click.command("create", context_settings=NO_INTERSPERSED)
@run_flags
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def create(image: str, command: tuple[str, ...], **kw: Any) -> None:
    """Create a container without starting it; print its id."""
    click.echo(create_container(run_calls(engine()), image, command, kw))


@click.command("start")
@click.option("-a", "--attach", is_flag=True, help="Attach stdout/stderr and wait.")
@click.option("-i", "--interactive", is_flag=True, help="Attach stdin.")
@click.argument("containers", nargs=-1, required=True)
def start(attach: bool, interactive: bool, containers: tuple[str, ...]) -> None:
    """Start one or more stopped containers."""
    api = engine()
    calls = run_calls(api)
    if attach or interactive:
        if len(containers) != 1:
            raise click.UsageError("you cannot attach to more than one container")
        info = api.containers.inspect(containers[0])
        sys.exit(attach_and_start(calls, str_at(info, "Id"), bool_at(info, "Config", "Tty"),
                                  interactive, False))
    failed = 0
    for name in containers:
        try:
            start_container(calls, name)
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

    containers = engine().containers
    info = containers.inspect(container)
    if not bool_at(info, "State", "Running"):
        raise _daemon_error(PortsideError("You cannot attach to a stopped container,"
                                          " start it first"), 1)
    cid, tty = str_at(info, "Id"), bool_at(info, "Config", "Tty")
    stdin = bool_at(info, "Config", "OpenStdin") and not no_stdin
    sock, first = containers.attach(cid, stdin=stdin)

    def resize(rows: int, cols: int) -> None:
        containers.resize(cid, rows, cols)

    session = Session(sock, first, tty, stdin, resize)
    session.run()
    if session.detached:
        return
    sys.exit(containers.wait(cid).status_code)


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

    containers = engine().containers
    exec_id = containers.exec_create(container, ExecOptions(
        cmd=list(command), tty=tty, stdin=interactive and not detach, stdout=not detach,
        stderr=not detach, env=parse_env(list(env), os.environ), workdir=workdir, user=user,
        privileged=privileged))
    if detach:
        containers.exec_start_detached(exec_id)
        return
    sock, first = containers.exec_start(exec_id, tty=tty,
                                        console_size=terminal_size() if tty else None)

    def resize(rows: int, cols: int) -> None:
        containers.exec_resize(exec_id, rows, cols)

    session = Session(sock, first, tty, interactive, resize)
    session.run()
    if session.detached:
        return
    sys.exit(containers.exec_inspect(exec_id).exit_code or 0)
