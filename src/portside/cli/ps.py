"""Container commands that look and control: `ps`, `logs`, `inspect`, `top`, `stats`,
`stop`, `kill`, `restart`, `pause`, `unpause`, `wait`, `rm`, `container prune`, `events`,
and the `container` group with Docker's aliases."""

from __future__ import annotations

import json
import sys

import click

from portside.cli.batch import for_each
from portside.cli.engine import engine
from portside.cli.main import LazyGroup
from portside.cli.output import dump_json, render, table
from portside.engine.interface import (
    ContainerSummary,
    Document,
    Event,
    EventOptions,
    LogOptions,
    at,
    int_at,
    list_at,
    number_at,
    str_at,
)
from portside.errors import PortsideError


@click.command("ps")
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all containers.")
@click.option("-q", "--quiet", is_flag=True, help="Only show ids.")
@click.option("-f", "--filter", "filters", multiple=True, help="status=, name=, label=, id=...")
@click.option("--format", "fmt", default="table", help="table or json.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option("-n", "--last", type=int, default=-1, help="Show the n last created.")
def ps(show_all: bool, quiet: bool, filters: tuple[str, ...], fmt: str, no_trunc: bool,
       last: int) -> None:
    """List containers: CONTAINER ID, IMAGE, COMMAND, CREATED, STATUS, PORTS, NAMES."""
    from portside.engine.options import parse_filters

    items = engine().containers.list(all=show_all or last > 0,
                                     filters=parse_filters(list(filters)) if filters else None,
                                     limit=max(last, 0))
    if quiet:
        for c in items:
            click.echo(c.id if no_trunc else c.id[:12])
        return
    if fmt == "json":
        for c in items:
            click.echo(json.dumps(_row_json(c)))
        return
    if "{{" in fmt:
        for c in items:
            click.echo(render(fmt.removeprefix("table "), _row_json(c)))
        return
    if fmt != "table":
        raise click.BadParameter("use table, json or a {{.Field}} template",
                                 param_hint="--format")
    rows = []
    for c in items:
        command = c.command if no_trunc or len(c.command) <= 20 else c.command[:19] + "…"
        rows.append([c.id if no_trunc else c.id[:12], c.image, f'"{command}"',
                     _ago(c.created), c.status, _ports(c), ",".join(n.lstrip("/")
                                                                for n in c.names)])
    table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"], rows)


def _ago(ts: float) -> str:
    """Docker's CREATED column: `5 seconds ago`, `About a minute ago`."""
    import time

    from portside.engine.query import human_duration

    return human_duration(time.time() - ts) + " ago"


def _ports(c: ContainerSummary) -> str:
    """`0.0.0.0:8080->80/tcp`, as Docker's PORTS column."""
    return ", ".join(f"{p.ip or '0.0.0.0'}:{p.public}->{p.private}/{p.protocol}"
                     if p.public else f"{p.private}/{p.protocol}" for p in c.ports)


def _row_json(c: ContainerSummary) -> Document:
    """`docker ps --format json`: one object a line, with Docker's field names."""
    return {"Command": f'"{c.command}"', "CreatedAt": c.created, "ID": c.id[:12],
            "Image": c.image, "Labels": ",".join(f"{k}={v}" for k, v in c.labels.items()),
            "Mounts": ",".join(c.mounts), "Names": ",".join(n.lstrip("/") for n in c.names),
            "Ports": _ports(c), "RunningFor": _ago(c.created).removesuffix(" ago"),
            "State": c.state, "Status": c.status}


@click.command("logs")
@click.option("-f", "--follow", is_flag=True, help="Follow log output.")
@click.option("-n", "--tail", default="all", help="Lines to show from the end.")
@click.option("--since", "since_", default=None, help="Since a time or duration (10m).")
@click.option("--until", default=None, help="Before a time or duration.")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps.")
@click.argument("container")
def logs(follow: bool, tail: str, since_: str | None, until: str | None, timestamps: bool,
         container: str) -> None:
    """Fetch the logs of a container."""
    import time

    from portside.engine.options import parse_time_or_duration

    now = time.time()
    options = LogOptions(
        follow=follow, timestamps=timestamps, tail=tail,
        since=f"{parse_time_or_duration(since_, now):.9f}" if since_ else "",
        until=f"{parse_time_or_duration(until, now):.9f}" if until else "")
    out, err = sys.stdout.buffer, sys.stderr.buffer
    for chunk in engine().containers.logs(container, options):
        target = err if chunk.stream == 2 else out
        target.write(chunk.data)
        target.flush()


@click.command("inspect")
@click.option("-f", "--format", "fmt", default=None, help="json (default).")
@click.option("--type", "kind", default="container", type=click.Choice(["container", "volume"]))
@click.argument("names", nargs=-1, required=True)
def inspect(fmt: str | None, kind: str, names: tuple[str, ...]) -> None:
    """Low-level information on containers (or volumes) as JSON."""
    api = engine()
    fetch = api.containers.inspect if kind == "container" else api.volumes.inspect
    docs: list[Document] = []
    failed = False
    for name in names:
        try:
            docs.append(fetch(name))
        except PortsideError as exc:
            click.echo(f"Error: {exc}", err=True)
            failed = True
    if fmt and fmt != "json":
        for doc in docs:
            click.echo(render(fmt, doc))
    else:
        dump_json(docs)
    if failed:
        sys.exit(1)


@click.command("top")
@click.argument("container")
def top(container: str) -> None:
    """The running processes of a container."""
    found = engine().containers.top(container)
    table(found.titles, found.processes)


@click.command("stats")
@click.option("--no-stream", is_flag=True, help="Print one sample and exit.")
@click.option("-a", "--all", "show_all", is_flag=True, help="Also stopped containers.")
@click.option("--format", "fmt", default="table", help="table or json.")
@click.argument("containers", nargs=-1)
def stats(no_stream: bool, show_all: bool, fmt: str, containers: tuple[str, ...]) -> None:
    """CPU %, memory usage/limit, block I/O and pids of containers."""
    from portside.cli.output import human_size

    api = engine()
    ids = list(containers) or [c.id for c in api.containers.list(all=show_all)]
    while True:
        rows, docs = [], []
        for cid in ids:
            s = api.containers.stats(cid)
            delta = (number_at(s, "cpu_stats", "cpu_usage", "total_usage")
                     - number_at(s, "precpu_stats", "cpu_usage", "total_usage"))
            sys_delta = (number_at(s, "cpu_stats", "system_cpu_usage")
                         - number_at(s, "precpu_stats", "system_cpu_usage"))
            cpus = number_at(s, "cpu_stats", "online_cpus") if at(
                s, "cpu_stats", "online_cpus") is not None else 1
            pct = delta / sys_delta * cpus * 100 if sys_delta > 0 else 0.0
            usage = (number_at(s, "memory_stats", "usage")
                     - number_at(s, "memory_stats", "stats", "inactive_file"))
            limit = number_at(s, "memory_stats", "limit") or 1
            blk = {str_at(e, "op"): number_at(e, "value")
                   for e in list_at(s, "blkio_stats", "io_service_bytes_recursive")
                   if isinstance(e, dict)}
            row = [str_at(s, "id")[:12], str_at(s, "name").lstrip("/"), f"{pct:.2f}%",
                   f"{human_size(usage)} / {human_size(limit)}", f"{usage / limit * 100:.2f}%",
                   f"{human_size(blk.get('read', 0))} / {human_size(blk.get('write', 0))}",
                   str(int_at(s, "pids_stats", "current"))]
            rows.append(row)
            docs.append(dict(zip(["ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "BlockIO",
                                  "PIDs"], row, strict=True)))
        if fmt == "json":
            for d in docs:
                click.echo(json.dumps(d))
        else:
            table(["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "BLOCK I/O",
                   "PIDS"], rows)
        if no_stream:
            return


@click.command("stop")
@click.option("-t", "--time", "timeout", type=int, default=None, help="Seconds before SIGKILL.")
@click.option("-s", "--signal", "sig", default=None, help="Signal to send.")
@click.argument("containers", nargs=-1, required=True)
def stop(timeout: int | None, sig: str | None, containers: tuple[str, ...]) -> None:
    """Stop containers: the stop signal, then SIGKILL after the timeout."""
    api = engine()
    for_each(containers, lambda n: api.containers.stop(n, timeout, sig))


@click.command("kill")
@click.option("-s", "--signal", "sig", default="KILL", help="Signal to send.")
@click.argument("containers", nargs=-1, required=True)
def kill(sig: str, containers: tuple[str, ...]) -> None:
    """Send a signal (default KILL) to containers."""
    from portside.engine.options import parse_signal

    parse_signal(sig)
    api = engine()
    for_each(containers, lambda n: api.containers.kill(n, sig))


@click.command("restart")
@click.option("-t", "--time", "timeout", type=int, default=None, help="Seconds before SIGKILL.")
@click.argument("containers", nargs=-1, required=True)
def restart(timeout: int | None, containers: tuple[str, ...]) -> None:
    """Restart containers."""
    api = engine()
    for_each(containers, lambda n: api.containers.restart(n, timeout))


@click.command("pause")
@click.argument("containers", nargs=-1, required=True)
def pause(containers: tuple[str, ...]) -> None:
    """Freeze all processes of containers."""
    api = engine()
    for_each(containers, api.containers.pause)


@click.command("unpause")
@click.argument("containers", nargs=-1, required=True)
def unpause(containers: tuple[str, ...]) -> None:
    """Thaw paused containers."""
    api = engine()
    for_each(containers, api.containers.unpause)


@click.command("wait")
@click.argument("containers", nargs=-1, required=True)
def wait(containers: tuple[str, ...]) -> None:
    """Block until containers stop; print their exit codes."""
    api = engine()
    for name in containers:
        click.echo(api.containers.wait(name).status_code)


@click.command("rm")
@click.option("-f", "--force", is_flag=True, help="Kill a running container first.")
@click.option("-v", "--volumes", is_flag=True, help="Remove its anonymous volumes.")
@click.argument("containers", nargs=-1, required=True)
def rm(force: bool, volumes: bool, containers: tuple[str, ...]) -> None:
    """Remove containers."""
    api = engine()
    for_each(containers, lambda n: api.containers.remove(n, force=force, volumes=volumes))


@click.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.option("--filter", "filters", multiple=True, help="label=..., until=...")
def prune(force: bool, filters: tuple[str, ...]) -> None:
    """Remove all stopped containers."""
    from portside.engine.options import parse_filters

    if not force and sys.stdin.isatty():
        click.confirm("WARNING! This will remove all stopped containers.\n"
                      "Are you sure you want to continue?", abort=True)
    report = engine().containers.prune(parse_filters(list(filters)) if filters else None)
    if report.deleted:
        click.echo("Deleted Containers:")
        for cid in report.deleted:
            click.echo(cid)
        click.echo("")
    click.echo(f"Total reclaimed space: {report.space_reclaimed}B")


@click.command("events")
@click.option("--since", "since_", default=None, help="Events since a time or duration.")
@click.option("--until", default=None, help="Stream until a time or duration.")
@click.option("-f", "--filter", "filters", multiple=True, help="type=, event=, container=...")
@click.option("--format", "fmt", default="", help="json for one JSON object a line.")
@click.option("--after-revision", type=int, default=0,
              help="Resume: only the events after this revision (each JSON event has one).")
def events(since_: str | None, until: str | None, filters: tuple[str, ...], fmt: str,
           after_revision: int) -> None:
    """Stream the daemon's events."""
    import time
    from datetime import datetime

    from portside.engine.options import parse_filters, parse_time_or_duration

    now = time.time()
    options = EventOptions(
        since=f"{parse_time_or_duration(since_, now):.9f}" if since_ else "",
        until=f"{parse_time_or_duration(until, now):.9f}" if until else "",
        filters=parse_filters(list(filters)) if filters else {}, after_revision=after_revision)
    for e in engine().system.events(options):
        if fmt == "json":
            click.echo(json.dumps(_docker_event(e)))
            continue
        stamp = datetime.fromtimestamp(e.time_nano / 1e9).astimezone().isoformat()
        attrs = ", ".join(f"{k}={v}" for k, v in sorted(e.attributes.items()))
        click.echo(f"{stamp} {e.type} {e.action} {e.actor_id} ({attrs})")


def _docker_event(e: Event) -> Document:
    """An event as Docker's JSON message (`docker events --format json`), with the legacy
    status/id/from fields of container events."""
    doc: Document = {"Type": e.type, "Action": e.action,
                     "Actor": {"ID": e.actor_id, "Attributes": dict(e.attributes)},
                     "scope": "local", "time": e.time_nano // 10**9, "timeNano": e.time_nano,
                     "revision": e.revision}
    if e.type == "container":
        doc.update({"status": e.action, "id": e.actor_id,
                    "from": e.attributes.get("image", "")})
    return doc


CONTAINER_COMMANDS = {
    "ls": "portside.cli.ps:ps", "ps": "portside.cli.ps:ps", "list": "portside.cli.ps:ps",
    "run": "portside.cli.containers:run", "create": "portside.cli.containers:create",
    "start": "portside.cli.containers:start", "attach": "portside.cli.containers:attach",
    "exec": "portside.cli.containers:exec_", "logs": "portside.cli.ps:logs",
    "inspect": "portside.cli.ps:inspect", "top": "portside.cli.ps:top",
    "stats": "portside.cli.ps:stats", "stop": "portside.cli.ps:stop",
    "kill": "portside.cli.ps:kill", "restart": "portside.cli.ps:restart",
    "pause": "portside.cli.ps:pause", "unpause": "portside.cli.ps:unpause",
    "wait": "portside.cli.ps:wait", "rm": "portside.cli.ps:rm",
    "prune": "portside.cli.ps:prune", "diff": "portside.cli.commit:diff",
    "commit": "portside.cli.commit:commit", "cp": "portside.cli.cp:cp",
    "update": "portside.cli.manage:update", "rename": "portside.cli.manage:rename",
    "export": "portside.cli.exports:export",
}


@click.group("container", cls=LazyGroup, lazy=CONTAINER_COMMANDS)
def container() -> None:
    """Manage containers."""
