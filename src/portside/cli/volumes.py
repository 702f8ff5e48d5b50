"""`portside volume create|ls|inspect|rm|prune`, through the daemon."""

from __future__ import annotations

import json
import sys

import click

from portside.cli.batch import for_each, inspect_each
from portside.cli.engine import engine
from portside.cli.output import table
from portside.engine.interface import VolumeCreate


@click.group("volume")
def volume() -> None:
    """Manage volumes."""


@volume.command("create")
@click.option("-l", "--label", "labels", multiple=True, help="K=V metadata.")
@click.option("-d", "--driver", default="local", help="Only local.")
@click.argument("name", required=False, default="")
def create(labels: tuple[str, ...], driver: str, name: str) -> None:
    """Create a volume (a random name when none is given)."""
    from portside.engine.options import parse_labels

    doc = engine().volumes.create(VolumeCreate(name=name, driver=driver,
                                               labels=parse_labels(list(labels))))
    click.echo(doc["Name"])


@volume.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only names.")
@click.option("-f", "--filter", "filters", multiple=True, help="dangling=true, name=...")
@click.option("--format", "fmt", default="table", help="table or json.")
def ls(quiet: bool, filters: tuple[str, ...], fmt: str) -> None:
    """List volumes."""
    from portside.engine.options import parse_filters

    vols = engine().volumes.list(parse_filters(list(filters)) if filters else None)
    if quiet:
        for v in vols:
            click.echo(v["Name"])
    elif fmt == "json":
        for v in vols:
            click.echo(json.dumps({"Driver": v["Driver"], "Name": v["Name"],
                                   "Mountpoint": v["Mountpoint"], "Scope": v["Scope"]}))
    else:
        table(["DRIVER", "VOLUME NAME"], [[v["Driver"], v["Name"]] for v in vols])


@volume.command("inspect")
@click.argument("names", nargs=-1, required=True)
def inspect(names: tuple[str, ...]) -> None:
    """Details of volumes as JSON."""
    inspect_each(names, engine().volumes.inspect)


@volume.command("rm")
@click.option("-f", "--force", is_flag=True, help="Ignored unless in use: never removes one in use.")
@click.argument("names", nargs=-1, required=True)
def rm(force: bool, names: tuple[str, ...]) -> None:
    """Remove volumes (refused while a container uses one)."""
    volumes = engine().volumes
    for_each(names, lambda name: volumes.remove(name, force=force))


@volume.command("prune")
@click.option("-a", "--all", "everything", is_flag=True, help="Also unused named volumes.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
def prune(everything: bool, force: bool) -> None:
    """Remove unused anonymous volumes (all unused ones with -a)."""
    if not force and sys.stdin.isatty():
        click.confirm("WARNING! This will remove unused volumes. Continue?", abort=True)
    report = engine().volumes.prune({"all": ["true"]} if everything else None)
    if report.deleted:
        click.echo("Deleted Volumes:")
        for name in report.deleted:
            click.echo(name)
        click.echo("")
    click.echo(f"Total reclaimed space: {report.space_reclaimed}B")
