"""Container commands that look and control: `ps`, `logs`, `inspect`, `top`, `stats`,
`stop`, `kill`, `restart`, `pause`, `unpause`, `wait`, `rm`, `container prune`, `events`,
and the `container` group with Docker's aliases."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from portside.cli.batch import for_each
from portside.cli.main import LazyGroup
from portside.cli.output import dump_json, table
from portside.client.transport import Client
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

    params: dict[str, Any] = {"all": show_all or last > 0}
    if filters:
        params["filters"] = parse_filters(list(filters))
    if last > 0:
        params["limit"] = last
    items = Client().get("/containers/json", **params)
    if quiet:
        for c in items:
            click.echo(c["Id"] if no_trunc else c["Id"][:12])
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
        command = c["Command"] if no_trunc or len(c["Command"]) <= 20 else c["Command"][:19] + "…"
        rows.append([c["Id"] if no_trunc else c["Id"][:12], c["Image"], f'"{command}"',
                     _ago(c["Created"]), c["Status"], _ports(c), ",".join(n.lstrip("/")
                                                                   for n in c["Names"])])
    table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"], rows)


def _ago(ts: float) -> str:
    """Docker's CREATED column: `5 seconds ago`, `About a minute ago`."""
    import time

    from portside.engine.query import human_duration

    return human_duration(time.time() - ts) + " ago"


def _ports(c: dict[str, Any]) -> str:
    """`0.0.0.0:8080->80/tcp`, as Docker's PORTS column."""
    return ", ".join(f"{p.get('IP', '0.0.0.0')}:{p['PublicPort']}->{p['PrivatePort']}/{p['Type']}"
                     if p.get("PublicPort") else f"{p['PrivatePort']}/{p['Type']}"
                     for p in c.get("Ports") or [])


def _row_json(c: dict[str, Any]) -> dict[str, Any]:
    """`docker ps --format json`: one object a line, with Docker's field names."""
    return {"Command": f'"{c["Command"]}"', "CreatedAt": c["Created"], "ID": c["Id"][:12],
            "Image": c["Image"], "Labels": ",".join(f"{k}={v}" for k, v in c["Labels"].items()),
            "Mounts": ",".join(m.get("Name") or m.get("Source", "") for m in c["Mounts"]),
            "Names": ",".join(n.lstrip("/") for n in c["Names"]), "Ports": _ports(c),
            "RunningFor": _ago(c["Created"]).removesuffix(" ago"), "State": c["State"],
            "Status": c["Status"]}


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

    from portside.client.transport import demux
    from portside.engine.options import parse_time_or_duration

    client = Client()
    info = client.get(f"/containers/{container}/json")
    params: dict[str, Any] = {"stdout": 1, "stderr": 1, "follow": follow,
                              "timestamps": timestamps, "tail": tail}
    now = time.time()
    if since_:
        params["since"] = f"{parse_time_or_duration(since_, now):.9f}"
    if until:
        params["until"] = f"{parse_time_or_duration(until, now):.9f}"
    resp = client.request("GET", f"/containers/{info['Id']}/logs", params)
    demux(_ResponseSocket(resp), b"", bool(info["Config"]["Tty"]), sys.stdout.buffer,
          sys.stderr.buffer)


class _ResponseSocket:
    """An HTTP response body read like a socket (for demux)."""

    def __init__(self, resp: Any) -> None:
        self.resp = resp

    def recv(self, n: int) -> bytes:
        data: bytes = self.resp.read1(n)
        return data


@click.command("inspect")
@click.option("-f", "--format", "fmt", default=None, help="json (default).")
@click.option("--type", "kind", default="container", type=click.Choice(["container", "volume"]))
@click.argument("names", nargs=-1, required=True)
def inspect(fmt: str | None, kind: str, names: tuple[str, ...]) -> None:
    """Low-level information on containers (or volumes) as JSON."""
    client = Client()
    docs, failed = [], False
    for name in names:
        try:
            path = f"/containers/{name}/json" if kind == "container" else f"/volumes/{name}"
            docs.append(client.get(path))
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


def render(template: str, doc: dict[str, Any]) -> str:
    """The subset of Go templates scripts use: `{{.A.B}}` and `{{json .A}}`."""
    import re

    def sub(m: re.Match[str]) -> str:
        v: Any = doc
        for part in filter(None, m.group(2).split(".")):
            v = v.get(part) if isinstance(v, dict) else None
        if m.group(1):
            return json.dumps(v)
        if isinstance(v, bool):
            return "true" if v else "false"
        if v is None:
            return "<no value>"
        return json.dumps(v) if isinstance(v, dict | list) else str(v)

    out = re.sub(r"{{\s*(json\s+)?(\.[\w.]*)\s*}}", sub, template)
    return out.replace("\\t", "\t").replace("\\n", "\n")


@click.command("top")
@click.argument("container")
def top(container: str) -> None:
    """The running processes of a container."""
    doc = Client().get(f"/containers/{container}/top")
    table(doc["Titles"], doc["Processes"])


@click.command("stats")
@click.option("--no-stream", is_flag=True, help="Print one sample and exit.")
@click.option("-a", "--all", "show_all", is_flag=True, help="Also stopped containers.")
@click.option("--format", "fmt", default="table", help="table or json.")
@click.argument("containers", nargs=-1)
def stats(no_stream: bool, show_all: bool, fmt: str, containers: tuple[str, ...]) -> None:
    """CPU %, memory usage/limit, block I/O and pids of containers."""
    from portside.cli.output import human_size

    client = Client()
    ids = list(containers) or [c["Id"] for c in client.get("/containers/json", all=show_all)]
    while True:
        rows, docs = [], []
        for cid in ids:
            s = client.get(f"/containers/{cid}/stats", stream=False)
            cpu, pre = s["cpu_stats"], s["precpu_stats"]
            delta = cpu["cpu_usage"]["total_usage"] - pre["cpu_usage"].get("total_usage", 0)
            sys_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
            pct = delta / sys_delta * cpu.get("online_cpus", 1) * 100 if sys_delta > 0 else 0.0
            mem = s["memory_stats"]
            usage = mem.get("usage", 0) - mem.get("stats", {}).get("inactive_file", 0)
            limit = mem.get("limit", 0) or 1
            blk = {e["op"]: e["value"] for e in s["blkio_stats"]["io_service_bytes_recursive"]}
            row = [s["id"][:12], s["name"].lstrip("/"), f"{pct:.2f}%",
                   f"{human_size(usage)} / {human_size(limit)}", f"{usage / limit * 100:.2f}%",
                   f"{human_size(blk.get('read', 0))} / {human_size(blk.get('write', 0))}",
                   str(s["pids_stats"].get("current", 0))]
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
    for_each(containers, lambda c, n: c.request("POST", f"/containers/{n}/stop",
                                             {"t": timeout, "signal": sig}).read())


@click.command("kill")
@click.option("-s", "--signal", "sig", default="KILL", help="Signal to send.")
@click.argument("containers", nargs=-1, required=True)
def kill(sig: str, containers: tuple[str, ...]) -> None:
    """Send a signal (default KILL) to containers."""
    from portside.engine.options import parse_signal

    parse_signal(sig)
    for_each(containers, lambda c, n: c.request("POST", f"/containers/{n}/kill",
                                             {"signal": sig}).read())


@click.command("restart")
@click.option("-t", "--time", "timeout", type=int, default=None, help="Seconds before SIGKILL.")
@click.argument("containers", nargs=-1, required=True)
def restart(timeout: int | None, containers: tuple[str, ...]) -> None:
    """Restart containers."""
    for_each(containers, lambda c, n: c.request("POST", f"/containers/{n}/restart",
                                             {"t": timeout}).read())


@click.command("pause")
@click.argument("containers", nargs=-1, required=True)
def pause(containers: tuple[str, ...]) -> None:
    """Freeze all processes of containers."""
    for_each(containers, lambda c, n: c.request("POST", f"/containers/{n}/pause").read())


@click.command("unpause")
@click.argument("containers", nargs=-1, required=True)
def unpause(containers: tuple[str, ...]) -> None:
    """Thaw paused containers."""
    for_each(containers, lambda c, n: c.request("POST", f"/containers/{n}/unpause").read())


@click.command("wait")
@click.argument("containers", nargs=-1, required=True)
def wait(containers: tuple[str, ...]) -> None:
    """Block until containers stop; print their exit codes."""
    client = Client()
    for name in containers:
        click.echo(client.post(f"/containers/{name}/wait")["StatusCode"])


@click.command("rm")
@click.option("-f", "--force", is_flag=True, help="Kill a running container first.")
@click.option("-v", "--volumes", is_flag=True, help="Remove its anonymous volumes.")
@click.argument("containers", nargs=-1, required=True)
def rm(force: bool, volumes: bool, containers: tuple[str, ...]) -> None:
    """Remove containers."""
    for_each(containers, lambda c, n: c.request("DELETE", f"/containers/{n}",
                                             {"force": force, "v": volumes}).read())


@click.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.option("--filter", "filters", multiple=True, help="label=..., until=...")
def prune(force: bool, filters: tuple[str, ...]) -> None:
    """Remove all stopped containers."""
    from portside.engine.options import parse_filters

    if not force and sys.stdin.isatty():
        click.confirm("WARNING! This will remove all stopped containers.\n"
                      "Are you sure you want to continue?", abort=True)
    params = {"filters": parse_filters(list(filters))} if filters else {}
    doc = Client().post("/containers/prune", **params)
    deleted = doc.get("ContainersDeleted") or []
    if deleted:
        click.echo("Deleted Containers:")
        for cid in deleted:
            click.echo(cid)
        click.echo("")
    click.echo(f"Total reclaimed space: {doc.get('SpaceReclaimed', 0)}B")


@click.command("events")
@click.option("--since", "since_", default=None, help="Events since a time or duration.")
@click.option("--until", default=None, help="Stream until a time or duration.")
@click.option("-f", "--filter", "filters", multiple=True, help="type=, event=, container=...")
@click.option("--format", "fmt", default="", help="json for one JSON object a line.")
def events(since_: str | None, until: str | None, filters: tuple[str, ...], fmt: str) -> None:
    """Stream the daemon's events."""
    import time
    from datetime import datetime

    from portside.engine.options import parse_filters, parse_time_or_duration

    now = time.time()
    params: dict[str, Any] = {}
    if since_:
        params["since"] = f"{parse_time_or_duration(since_, now):.9f}"
    if until:
        params["until"] = f"{parse_time_or_duration(until, now):.9f}"
    if filters:
        params["filters"] = parse_filters(list(filters))
    resp = Client().request("GET", "/events", params)
    while line := resp.readline():
        e = json.loads(line)
        if fmt == "json":
            click.echo(json.dumps(e))
            continue
        stamp = datetime.fromtimestamp(e["timeNano"] / 1e9).astimezone().isoformat()
        attrs = ", ".join(f"{k}={v}" for k, v in sorted(e["Actor"]["Attributes"].items()))
        click.echo(f"{stamp} {e['Type']} {e['Action']} {e['Actor']['ID']} ({attrs})")


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
    "commit": "portside.cli.commit:commit",
}


@click.group("container", cls=LazyGroup, lazy=CONTAINER_COMMANDS)
def container() -> None:
    """Manage containers."""
