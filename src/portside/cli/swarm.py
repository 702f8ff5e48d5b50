"""`portside swarm init|inspect|leave` and `portside node ls|inspect`: the single-node swarm
the services commands run on (the docker client's `swarm` and `node` verbs, same routes).

`service create` and `stack deploy` make this host a single-node manager themselves when
it is not one yet (`ensure_manager`), so services work without a separate `swarm init`.
"""

from __future__ import annotations

import json

import click

from portside.cli.batch import inspect_each
from portside.cli.engine import orchestrator
from portside.cli.output import dump_json, table
from portside.engine.interface import doc_at, int_at, str_at
from portside.engine.options import parse_filters
from portside.errors import InvalidArgument
from portside.orchestrator.interface import SwarmAPI
from portside.orchestrator.records import NotInSwarm, NotManager


def ensure_manager(swarm: SwarmAPI, quiet: bool = False) -> None:
    """Init a single-node swarm unless this host is a manager already."""
    try:
        swarm.inspect()
    except (NotManager, NotInSwarm):
        node = swarm.init({})
        if not quiet:
            click.echo(f"Swarm initialized: this host is a single-node manager (node {node})",
                       err=True)


@click.group("swarm")
def swarm() -> None:
    """Manage the (single-node) swarm."""


@swarm.command("init")
@click.option("--advertise-addr", default="", help="Address this manager advertises.")
def init(advertise_addr: str) -> None:
    """Make this host a swarm manager."""
    node = orchestrator()[1].init({"AdvertiseAddr": advertise_addr} if advertise_addr else {})
    click.echo(f"Swarm initialized: current node ({node}) is now a manager.")


@swarm.command("inspect")
def inspect() -> None:
    """Show the swarm's document."""
    dump_json(orchestrator()[1].inspect())


@swarm.command("leave")
@click.option("-f", "--force", is_flag=True, help="Leave even as the last manager.")
def leave(force: bool) -> None:
    """Leave the swarm (its services and tasks go)."""
    orchestrator()[1].leave(force)
    click.echo("Node left the swarm.")


@click.group("node")
def node() -> None:
    """Manage swarm nodes."""


@node.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only IDs.")
@click.option("-f", "--filter", "filters", multiple=True, help="id=, name=, role=.")
@click.option("--format", "fmt", default="table", help="table or json.")
def ls(quiet: bool, filters: tuple[str, ...], fmt: str) -> None:
    """List nodes."""
    nodes = orchestrator()[1].nodes(parse_filters(list(filters)) if filters else None)
    rows = [{"ID": str_at(n, "ID"), "Hostname": str_at(n, "Description", "Hostname"),
             "Status": str_at(n, "Status", "State").capitalize(),
             "Availability": str_at(n, "Spec", "Availability").capitalize(),
             "ManagerStatus": "Leader" if (n.get("ManagerStatus") or {}) else "",
             "EngineVersion": str_at(n, "Description", "Engine", "EngineVersion")}
            for n in nodes]
    if quiet:
        click.echo("\n".join(r["ID"] for r in rows))
    elif fmt == "json":
        for r in rows:
            click.echo(json.dumps(r))
    else:
        table(("ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS", "ENGINE VERSION"),
              [list(r.values()) for r in rows])


@node.command("inspect")
@click.argument("refs", nargs=-1, required=True)
def node_inspect(refs: tuple[str, ...]) -> None:
    """Show nodes' documents (`self` is this host)."""
    swarm_api = orchestrator()[1]

    def fetch(ref: str) -> dict:  # type: ignore[type-arg]
        if ref == "self":
            return swarm_api.nodes()[0]
        return swarm_api.node(ref)

    inspect_each(refs, fetch)


@node.command("update")
@click.option("--label-add", multiple=True, help="Node label KEY=VALUE (for constraints).")
@click.option("--label-rm", multiple=True, help="Remove a node label.")
@click.option("--availability", type=click.Choice(["active", "pause", "drain"]), default=None,
              help="active, pause or drain (drain moves the tasks away).")
@click.argument("ref")
def node_update(label_add: tuple[str, ...], label_rm: tuple[str, ...],
                availability: str | None, ref: str) -> None:
    """Change a node's labels or availability (`self` is this host)."""
    swarm_api = orchestrator()[1]
    doc = swarm_api.nodes()[0] if ref == "self" else swarm_api.node(ref)
    spec = dict(doc_at(doc, "Spec"))
    labels = {k: v for k, v in doc_at(spec, "Labels").items() if k not in set(label_rm)}
    for item in label_add:
        key, _, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid --label-add {item!r}: use KEY=VALUE")
        labels[key] = value
    spec["Labels"] = labels
    if availability:
        spec["Availability"] = availability
    swarm_api.update_node(str_at(doc, "ID"), int_at(doc, "Version", "Index"), spec)
    click.echo(str_at(doc, "ID"))
