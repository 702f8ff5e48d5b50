"""`portside service create|ls|ps|inspect|logs|scale|update|rollback|rm`, Docker's verbs
and flags over the daemon's services API (`cli.servicespec` builds the spec).

`create`, `update`, `scale` and `rollback` wait until the service converged unless
`--detach`; an update the daemon paused or rolled back exits 1 (`servicewait`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from portside.cli import servicerender, servicespec, servicewait
from portside.cli.batch import for_each, inspect_each
from portside.cli.engine import orchestrator
from portside.cli.output import render, table
from portside.engine.interface import Document, LogOptions, doc_at, int_at, str_at
from portside.engine.options import parse_filters
from portside.errors import InvalidArgument, PortsideError

# (flag declarations, destination, takes several, help); shared by create and update.
SHARED: list[tuple[tuple[str, ...], str, bool, str]] = [
    (("--replicas",), "replicas", False, "Number of tasks."),
    (("--endpoint-mode",), "endpoint_mode", False, "vip or dnsrr."),
    (("--health-cmd",), "health_cmd", False, "Command to run to check health."),
    (("--health-interval",), "health_interval", False, "Time between checks (e.g. 2s)."),
    (("--health-timeout",), "health_timeout", False, "Maximum time a check may run."),
    (("--health-retries",), "health_retries", False, "Failures before unhealthy."),
    (("--health-start-period",), "health_start_period", False, "Grace period at start."),
    (("--update-parallelism",), "update_parallelism", False, "Tasks updated at once (0: all)."),
    (("--update-delay",), "update_delay", False, "Delay between updates."),
    (("--update-monitor",), "update_monitor", False, "Time to watch a new task for failure."),
    (("--update-failure-action",), "update_failure_action", False, "pause|continue|rollback."),
    (("--update-max-failure-ratio",), "update_max_failure_ratio", False, "Failures tolerated."),
    (("--update-order",), "update_order", False, "stop-first|start-first."),
    (("--rollback-parallelism",), "rollback_parallelism", False, "Tasks rolled back at once."),
    (("--rollback-delay",), "rollback_delay", False, "Delay between rollbacks."),
    (("--rollback-monitor",), "rollback_monitor", False, "Time to watch a task after it."),
    (("--rollback-failure-action",), "rollback_failure_action", False, "pause|continue."),
    (("--rollback-max-failure-ratio",), "rollback_max_failure_ratio", False, "Ratio tolerated."),
    (("--rollback-order",), "rollback_order", False, "stop-first|start-first."),
    (("--restart-condition",), "restart_condition", False, "none|on-failure|any."),
    (("--restart-delay",), "restart_delay", False, "Delay between restart attempts."),
    (("--restart-max-attempts",), "restart_max_attempts", False, "Restarts before giving up."),
    (("--restart-window",), "restart_window", False, "Window to count attempts in."),
    (("--limit-cpu",), "limit_cpu", False, "CPU limit (e.g. 0.5)."),
    (("--limit-memory",), "limit_memory", False, "Memory limit (e.g. 64m)."),
    (("--limit-pids",), "limit_pids", False, "Process limit."),
    (("--reserve-cpu",), "reserve_cpu", False, "CPUs reserved for a task."),
    (("--reserve-memory",), "reserve_memory", False, "Memory reserved for a task."),
    (("-w", "--workdir"), "workdir", False, "Working directory."),
    (("-u", "--user"), "user", False, "User[:group]."),
    (("--hostname",), "hostname", False, "Container hostname."),
    (("--stop-grace-period",), "stop_grace_period", False, "Time before a forced kill."),
    (("--stop-signal",), "stop_signal", False, "Signal to stop a task."),
]
CREATE_ONLY: list[tuple[tuple[str, ...], str, bool, str]] = [
    (("-e", "--env"), "env", True, "KEY=VALUE."),
    (("-l", "--label"), "label", True, "Service label KEY=VALUE."),
    (("--container-label",), "container_label", True, "Container label KEY=VALUE."),
    (("--mount",), "mount", True, "type=volume|bind|tmpfs,src=...,dst=..."),
    (("-p", "--publish"), "publish", True, "PUBLISHED:TARGET[/PROTO] or published=,target=."),
    (("--network",), "network", True, "Network to attach (name or name=,alias=)."),
    (("--constraint",), "constraint", True, "Placement, e.g. node.role==manager."),
    (("--secret",), "secret", True, "Secret to expose (name or source=,target=)."),
    (("--config",), "config", True, "Config to expose (name or source=,target=)."),
    (("--mode",), "mode", False, "replicated or global."),
    (("--entrypoint",), "entrypoint", False, "Overwrite the image's entrypoint."),
    (("--name",), "name", False, "Service name."),
]
UPDATE_ONLY: list[tuple[tuple[str, ...], str, bool, str]] = [
    (("--image",), "image", False, "New image."),
    *[((f"--{flag}-add",), f"{dest}_add", True, f"Add a {flag}.")
      for flag, dest in (("env", "env"), ("label", "label"), ("container-label", "container_label"),
                         ("mount", "mount"), ("publish", "publish"), ("network", "network"),
                         ("constraint", "constraint"), ("secret", "secret"), ("config", "config"))],
    *[((f"--{flag}-rm",), f"{dest}_rm", True, f"Remove a {flag} (by key or target).")
      for flag, dest in (("env", "env"), ("label", "label"), ("container-label", "container_label"),
                         ("mount", "mount"), ("publish", "publish"), ("network", "network"),
                         ("constraint", "constraint"), ("secret", "secret"), ("config", "config"))],
]


def _options(specs: list[tuple[tuple[str, ...], str, bool, str]]
             ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(f: Callable[..., Any]) -> Callable[..., Any]:
        for decls, dest, multiple, help_ in reversed(specs):
            f = click.option(*decls, dest, multiple=multiple, default=None if not multiple
                             else (), help=help_)(f)
        return f
    return wrap


def _detach_and_flags(f: Callable[..., Any]) -> Callable[..., Any]:
    for opt in (click.option("-d", "--detach", is_flag=True,
                             help="Do not wait for the service to converge."),
                click.option("-q", "--quiet", is_flag=True, help="No progress output."),
                click.option("--init", is_flag=True, default=None, help="Run an init in tasks."),
                click.option("-t", "--tty", is_flag=True, default=None, help="Allocate a TTY."),
                click.option("--no-healthcheck", is_flag=True, default=None,
                             help="Disable the image's health check.")):
        f = opt(f)
    return f


def _nodes() -> int:
    try:
        return max(1, len(orchestrator()[1].nodes()))
    except PortsideError:
        return 1


def _converge(ref: str, before: Document | None, quiet: bool, rollback: bool = False) -> None:
    services, _ = orchestrator()
    report = (lambda line: None) if quiet else (lambda line: click.echo(line, err=True))
    servicewait.wait(services, ref, _nodes(), before, report, rollback=rollback)
    if not quiet:
        click.echo("verify: Service converged", err=True)


def _resolve(spec: Document) -> None:
    """Secret and config names -> their IDs (only when the spec names some)."""
    cs = doc_at(spec, "TaskTemplate", "ContainerSpec")
    if not (cs.get("Secrets") or cs.get("Configs")):
        return
    from portside.client.secrets import RemoteSecrets
    from portside.client.transport import Client
    from portside.compose.stackdeploy import resolve_refs

    client = Client()
    resolve_refs(spec, RemoteSecrets("secret", client), RemoteSecrets("config", client))


def _warn(warnings: list[str]) -> None:
    for w in warnings:
        click.echo(f"WARNING: {w}", err=True)


@click.group("service")
def service() -> None:
    """Manage services: replicated tasks the daemon keeps running."""


@service.command("create", context_settings={"allow_interspersed_args": False})
@_options(SHARED + CREATE_ONLY)
@_detach_and_flags
@click.argument("image")
@click.argument("args", nargs=-1)
def create(image: str, args: tuple[str, ...], detach: bool, quiet: bool, **kw: Any) -> None:
    """Create a service from IMAGE; prints its ID."""
    spec = servicespec.create_spec(kw.get("name") or "", image, args, kw)
    _resolve(spec)
    services, swarm = orchestrator()
    from portside.cli.swarm import ensure_manager

    ensure_manager(swarm, quiet)
    service_id, warnings = services.create(spec)
    _warn(warnings)
    click.echo(service_id)
    if not detach:
        _converge(service_id, None, quiet)


def _update(ref: str, change: Callable[[Document], Document], detach: bool, quiet: bool,
            rollback: bool = False) -> None:
    services, _ = orchestrator()
    before = services.inspect(ref)
    spec = change(doc_at(before, "Spec"))
    _resolve(spec)
    _warn(services.update(str_at(before, "ID"), int_at(before, "Version", "Index"), spec,
                          rollback=rollback))
    click.echo(str_at(before, "Spec", "Name") or ref)
    if not detach:
        _converge(str_at(before, "ID"), before, quiet, rollback=rollback)


@service.command("update")
@_options(SHARED + UPDATE_ONLY)
@_detach_and_flags
@click.option("--force", is_flag=True, help="Replace the tasks even if nothing changed.")
@click.option("--args", "new_args", default=None, help="Service command arguments.")
@click.option("--rollback", "roll_back", is_flag=True, help="Go back to the previous spec.")
@click.argument("ref")
def update(ref: str, detach: bool, quiet: bool, new_args: str | None, roll_back: bool,
           **kw: Any) -> None:
    """Update a service; waits for a health-gated rolling update, exits 1 when it was
    paused or rolled back."""
    def change(spec: Document) -> Document:
        new: Document = servicespec.apply(spec, kw)
        if new_args is not None:
            import shlex

            servicespec._container(new)["Args"] = shlex.split(new_args)
        return new

    _update(ref, change, detach, quiet, rollback=roll_back)


@service.command("rollback")
@click.option("-d", "--detach", is_flag=True, help="Do not wait.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.argument("ref")
def rollback(ref: str, detach: bool, quiet: bool) -> None:
    """Go back to the service's previous spec."""
    _update(ref, lambda spec: spec, detach, quiet, rollback=True)


@service.command("scale")
@click.option("-d", "--detach", is_flag=True, help="Do not wait.")
@click.argument("pairs", nargs=-1, required=True)
def scale(pairs: tuple[str, ...], detach: bool) -> None:
    """Set the replicas of services: `scale web=10 api=3`."""
    wanted: list[tuple[str, int]] = []
    for pair in pairs:
        name, eq, text = pair.partition("=")
        if not name or not eq:
            raise InvalidArgument(f"invalid scale {pair!r}: use SERVICE=REPLICAS")
        wanted.append((name, servicespec.replicas(text, f"replicas for {name}")))
    services, _ = orchestrator()
    failed = False
    for name, count in wanted:
        try:
            before = services.inspect(name)
            if "Replicated" not in doc_at(before, "Spec", "Mode"):
                raise InvalidArgument(f"{name}: scale can only be used with replicated mode")
            spec = servicespec.apply(doc_at(before, "Spec"), {"replicas": str(count)})
            _warn(services.update(str_at(before, "ID"), int_at(before, "Version", "Index"),
                                  spec))
            click.echo(f"{name} scaled to {count}")
            if not detach:
                _converge(str_at(before, "ID"), before, quiet=False)
        except PortsideError as exc:
            click.echo(f"Error: {exc}", err=True)
            failed = True
    if failed:
        sys.exit(1)


@service.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only IDs.")
@click.option("-f", "--filter", "filters", multiple=True, help="id=, name=, label=, mode=.")
@click.option("--format", "fmt", default="table", help="table, json or a Go template.")
def ls(quiet: bool, filters: tuple[str, ...], fmt: str) -> None:
    """List services."""
    services, _ = orchestrator()
    found = services.list(parse_filters(list(filters)) if filters else None)
    tasks = services.tasks({"desired-state": ["running"]}) if found else []
    nodes = _nodes()
    rows = []
    for s in found:
        mine = [t for t in tasks if str_at(t, "ServiceID") == str_at(s, "ID")]
        rows.append(servicerender.ls_row(s, servicewait.running(mine),
                                         servicewait.desired(s, nodes)))
    _print(rows, quiet, fmt, ("ID", "Name", "Mode", "Replicas", "Image", "Ports"),
           short_id=True)


def _print(rows: list[dict[str, Any]], quiet: bool, fmt: str, columns: tuple[str, ...],
           short_id: bool = False) -> None:
    if quiet:
        for r in rows:
            click.echo(r["ID"][:12] if short_id else r["ID"])
    elif fmt == "json":
        for r in rows:
            click.echo(json.dumps(r))
    elif fmt not in ("table", ""):
        for r in rows:
            click.echo(render(fmt, r))
    else:
        headers = [{"DesiredState": "DESIRED STATE", "CurrentState": "CURRENT STATE"}.get(
            c, c.upper()) for c in columns]
        table(headers, [[r[c][:12] if c == "ID" and short_id else r[c] for c in columns]
                        for r in rows])


@service.command("ps")
@click.option("-q", "--quiet", is_flag=True, help="Only task IDs.")
@click.option("-f", "--filter", "filters", multiple=True, help="desired-state=, name=, node=.")
@click.option("--format", "fmt", default="table", help="table, json or a Go template.")
@click.option("--no-trunc", is_flag=True, help="Full IDs and errors.")
@click.argument("refs", nargs=-1, required=True)
def ps(refs: tuple[str, ...], quiet: bool, filters: tuple[str, ...], fmt: str,
       no_trunc: bool) -> None:
    """The tasks of services, with their history and errors."""
    services, swarm = orchestrator()
    found = [services.inspect(ref) for ref in refs]
    names = {str_at(s, "ID"): str_at(s, "Spec", "Name") for s in found}
    query = parse_filters(list(filters)) if filters else {}
    query["service"] = list(names)
    tasks = services.tasks(query)
    hosts = {str_at(n, "ID"): str_at(n, "Description", "Hostname") for n in swarm.nodes()}
    rows = servicerender.ps_rows(tasks, names, hosts, no_trunc)
    _print(rows, quiet, fmt, ("ID", "Name", "Image", "Node", "DesiredState", "CurrentState",
                              "Error", "Ports"))


@service.command("inspect")
@click.option("--pretty", is_flag=True, help="Human-readable.")
@click.option("-f", "--format", "fmt", default="", help="A Go template.")
@click.argument("refs", nargs=-1, required=True)
def inspect(refs: tuple[str, ...], pretty: bool, fmt: str) -> None:
    """Show services' full documents."""
    services, _ = orchestrator()
    if pretty or fmt:
        for i, ref in enumerate(refs):
            doc = services.inspect(ref)
            if fmt:
                click.echo(render(fmt, doc))
                continue
            if i:
                click.echo("")
            click.echo("\n".join(servicerender.pretty(doc)))
        return
    inspect_each(refs, services.inspect)


@service.command("logs")
@click.option("-f", "--follow", is_flag=True, help="Keep following.")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps.")
@click.option("-n", "--tail", default="all", help="Lines from the end of each task's log.")
@click.option("--since", default="", help="Since a timestamp or a relative time (10m).")
@click.option("--raw", is_flag=True, help="No task prefix.")
@click.option("--no-task-ids", is_flag=True, help="Task names without their IDs.")
@click.option("--no-trunc", is_flag=True, help="Full task IDs.")
@click.argument("ref")
def logs(ref: str, follow: bool, timestamps: bool, tail: str, since: str, raw: bool,
         no_task_ids: bool, no_trunc: bool) -> None:
    """The logs of every task of a service, each line prefixed `name.slot.task@node |`."""
    services, swarm = orchestrator()
    svc = services.inspect(ref)
    name = str_at(svc, "Spec", "Name")
    slots = {str_at(t, "ID"): int_at(t, "Slot") for t in
             services.tasks({"service": [str_at(svc, "ID")]})}
    hosts = {str_at(n, "ID"): str_at(n, "Description", "Hostname") for n in swarm.nodes()}
    for chunk in services.logs(str_at(svc, "ID"), LogOptions(
            follow=follow, timestamps=timestamps, tail=tail, since=since)):
        stream = sys.stderr.buffer if chunk.stream == 2 else sys.stdout.buffer
        for line in chunk.data.splitlines(keepends=True):
            stream.write(servicerender.log_line(line, timestamps, raw, name, slots, hosts,
                                                no_task_ids, no_trunc))
        stream.flush()


@service.command("rm")
@click.argument("refs", nargs=-1, required=True)
def rm(refs: tuple[str, ...]) -> None:
    """Remove services (their tasks and containers go with them)."""
    services, _ = orchestrator()
    for_each(refs, services.remove)

