"""`portside stack deploy|ls|ps|services|rm`: a compose file as services, Docker's way.

The file goes through portside's compose loader (every stage, the schema included), then
`compose.stack` converts it and `compose.stackdeploy` converges the daemon to it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from portside.cli.output import table
from portside.errors import InvalidArgument

if TYPE_CHECKING:
    from portside.compose.stackdeploy import StackParts
    from portside.orchestrator.interface import SwarmAPI

CTX = {"help_option_names": ["-h", "--help"]}


def _parts() -> tuple[StackParts, SwarmAPI]:
    from portside.cli.engine import engine, orchestrator
    from portside.client.secrets import RemoteSecrets
    from portside.client.transport import Client
    from portside.compose.stackdeploy import StackParts

    services, swarm = orchestrator()
    client, daemon = Client(), engine()
    return StackParts(daemon.networks, daemon.volumes, services,
                      RemoteSecrets("secret", client), RemoteSecrets("config", client)), swarm


def _check_name(name: str) -> str:
    from portside.compose.project import PROJECT_NAME

    if not PROJECT_NAME.fullmatch(name):
        raise InvalidArgument(f"invalid stack name {name!r}: use lowercase letters, digits,"
                              " '_' and '-', starting with a letter or digit")
    return name


@click.group("stack", context_settings=CTX)
def stack() -> None:
    """Manage stacks: compose files deployed as services."""


def _echo(line: str) -> None:
    click.echo(line)


@stack.command("deploy")
@click.option("-c", "--compose-file", "files", multiple=True, required=True,
              help="Compose file (repeatable).")
@click.option("--prune", is_flag=True, help="Remove services no longer in the file.")
@click.option("--wait", is_flag=True, help="Wait until every service converged.")
@click.option("-d", "--detach", is_flag=True, help="Do not wait (the default).")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.argument("name")
def deploy(files: tuple[str, ...], prune: bool, wait: bool, detach: bool, quiet: bool,
           name: str) -> None:
    """Deploy a new stack or update an existing one."""
    from portside.cli import servicewait
    from portside.compose import stack as stackplan
    from portside.compose import stackdeploy
    from portside.compose.project import Options, load_project

    warn = (lambda m: None) if quiet else (lambda m: click.echo(f"WARN: {m}", err=True))
    project = load_project(Options(files=files, project_name=_check_name(name), warn=warn,
                                   stack=True))
    plan = stackplan.plan(project, warn)
    parts, swarm = _parts()
    from portside.cli.swarm import ensure_manager

    ensure_manager(swarm, quiet)
    report = (lambda m: None) if quiet else _echo
    outcome = stackdeploy.deploy(plan, parts, report, prune=prune)
    if wait and not detach:
        for svc in outcome.created + outcome.updated:
            servicewait.wait(parts.services, svc, max(1, len(swarm.nodes())), None,
                             (lambda m: None) if quiet else _echo)


@stack.command("ls")
@click.option("--format", "fmt", default="table", help="table or json.")
def ls(fmt: str) -> None:
    """List stacks."""
    from portside.compose import stackdeploy

    found = stackdeploy.stacks(_parts()[0].services)
    if fmt == "json":
        for ns, count in found.items():
            click.echo(json.dumps({"Name": ns, "Services": str(count)}))
        return
    table(("NAME", "SERVICES"), [(ns, count) for ns, count in found.items()])


def _namespace_filter(name: str) -> list[str]:
    from portside.compose.stack import NAMESPACE

    return [f"{NAMESPACE}={name}"]


@stack.command("services")
@click.option("-q", "--quiet", is_flag=True, help="Only IDs.")
@click.option("--format", "fmt", default="table", help="table or json.")
@click.argument("name")
@click.pass_context
def services_(ctx: click.Context, quiet: bool, fmt: str, name: str) -> None:
    """The services of a stack (as `service ls`)."""
    from portside.cli.services import ls as service_ls

    ctx.invoke(service_ls, quiet=quiet, fmt=fmt,
               filters=tuple(f"label={f}" for f in _namespace_filter(name)))


@stack.command("ps")
@click.option("-q", "--quiet", is_flag=True, help="Only task IDs.")
@click.option("--format", "fmt", default="table", help="table or json.")
@click.option("--no-trunc", is_flag=True, help="Full IDs and errors.")
@click.argument("name")
@click.pass_context
def ps(ctx: click.Context, quiet: bool, fmt: str, no_trunc: bool, name: str) -> None:
    """The tasks of a stack's services."""
    from portside.cli.services import ps as service_ps
    from portside.engine.interface import str_at

    found = _parts()[0].services.list({"label": _namespace_filter(name)})
    if not found:
        raise InvalidArgument(f"nothing found in stack: {name}")
    ctx.invoke(service_ps, refs=tuple(str_at(s, "ID") for s in found), quiet=quiet,
               filters=(), fmt=fmt, no_trunc=no_trunc)


@stack.command("rm")
@click.argument("names", nargs=-1, required=True)
def rm(names: tuple[str, ...]) -> None:
    """Remove stacks: their services, networks, volumes, secrets and configs."""
    from portside.compose import stackdeploy

    parts, _ = _parts()
    for name in names:
        if not stackdeploy.remove(name, parts, _echo):
            click.echo(f"Nothing found in stack: {name}", err=True)
