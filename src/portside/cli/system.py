"""`portside system df|prune|info`: where the space goes, and getting it back (Docker's
`system` verbs, through the daemon)."""

from __future__ import annotations

import sys
from typing import Any, cast

import click

from portside.cli.engine import engine
from portside.cli.main import LazyGroup
from portside.cli.output import human_size, table

# -- the commands ------------------------------------------------------------------------------


@click.group("system", cls=LazyGroup, lazy={"info": "portside.cli.info:info",
                                          "events": "portside.cli.ps:events"})
def system() -> None:
    """Manage portside."""


def _percent(part: int, whole: int) -> str:
    return f"{human_size(part)} ({part * 100 // whole if whole else 0}%)"


def df_rows(doc: dict[str, Any]) -> list[list[Any]]:
    """Docker's `system df` table: TYPE, TOTAL, ACTIVE, SIZE, RECLAIMABLE."""
    images = doc.get("Images") or []
    layers = int(doc.get("LayersSize") or 0)
    unused = sum(max(0, i["Size"] - max(0, i.get("SharedSize", 0))) for i in images
                 if not i.get("Containers"))
    containers = doc.get("Containers") or []
    rw = sum(int(c.get("SizeRw") or 0) for c in containers)
    stopped_rw = sum(int(c.get("SizeRw") or 0) for c in containers if c["State"] != "running")
    volumes = doc.get("Volumes") or []
    vsize = sum(int(v["UsageData"]["Size"]) for v in volumes)
    vfree = sum(int(v["UsageData"]["Size"]) for v in volumes if not v["UsageData"]["RefCount"])
    cache = doc.get("BuildCache") or []
    csize = sum(int(b["Size"]) for b in cache if not b["Shared"])
    cfree = sum(int(b["Size"]) for b in cache if not b["Shared"] and not b["InUse"])
    rows = [
        ["Images", len(images), sum(1 for i in images if i.get("Containers")),
         human_size(layers), _percent(min(unused, layers), layers)],
        ["Containers", len(containers), sum(1 for c in containers if c["State"] == "running"),
         human_size(rw), _percent(stopped_rw, rw)],
        ["Local Volumes", len(volumes), sum(1 for v in volumes if v["UsageData"]["RefCount"]),
         human_size(vsize), _percent(vfree, vsize)],
        ["Build Cache", len(cache), sum(1 for b in cache if b["InUse"]), human_size(csize),
         human_size(cfree)],
    ]
    if "SnapshotsSize" in doc:
        rows.append(["Layer snapshots", "", "", human_size(int(doc["SnapshotsSize"])), ""])
    return rows


@system.command()
@click.option("--format", "fmt", default="table", help="table or json.")
@click.option("-v", "--verbose", is_flag=True, help="Show detailed information on space usage.")
def df(fmt: str, verbose: bool) -> None:
    """Show disk usage: images, containers, local volumes, build cache."""
    from portside.cli.output import dump_json

    doc = cast(dict[str, Any], engine().system.df())
    if fmt == "json":
        dump_json(doc)
        return
    table(["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], df_rows(doc))
    if not verbose:
        return
    click.echo("\nImages space usage:\n")
    table(["REPOSITORY:TAG", "IMAGE ID", "SIZE", "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"],
          [[",".join(i["RepoTags"]) or "<none>", i["Id"].removeprefix("sha256:")[:12],
            human_size(i["Size"]), human_size(i.get("SharedSize", 0)),
            human_size(i["Size"] - i.get("SharedSize", 0)), i.get("Containers", 0)]
           for i in doc.get("Images") or []])
    click.echo("\nContainers space usage:\n")
    table(["CONTAINER ID", "IMAGE", "SIZE", "STATUS", "NAMES"],
          [[c["Id"][:12], c["Image"], human_size(c.get("SizeRw", 0)), c["Status"],
            ",".join(n.lstrip("/") for n in c["Names"])] for c in doc.get("Containers") or []])
    click.echo("\nLocal Volumes space usage:\n")
    table(["VOLUME NAME", "LINKS", "SIZE"],
          [[v["Name"], v["UsageData"]["RefCount"], human_size(v["UsageData"]["Size"])]
           for v in doc.get("Volumes") or []])
    click.echo("\nBuild cache usage: " + human_size(sum(b["Size"] for b in
                                                        doc.get("BuildCache") or [])))


def _warning(every: bool, volumes: bool) -> str:
    lines = ["WARNING! This will remove:", "  - all stopped containers",
             "  - all networks not used by at least one container"]
    if volumes:
        lines.append("  - all anonymous volumes not used by at least one container")
    lines.append("  - all images without at least one container associated to them" if every
                 else "  - all dangling images")
    lines.append("  - all build cache" if every else "  - unused build cache")
    return "\n".join(lines) + "\n"


@system.command()
@click.option("-a", "--all", "every", is_flag=True,
              help="Remove all unused images not just dangling ones.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.option("--volumes", is_flag=True, help="Prune anonymous volumes.")
@click.option("--filter", "filter_args", multiple=True, help="Provide filter values (until=, label=).")
def prune(every: bool, force: bool, volumes: bool, filter_args: tuple[str, ...]) -> None:
    """Remove unused data: stopped containers, unused networks, dangling images, build cache."""
    from portside.engine.options import parse_filters

    if not force:
        click.echo(_warning(every, volumes))
        click.echo("Are you sure you want to continue? [y/N] ", nl=False)
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            return
    filters = parse_filters(list(filter_args)) if filter_args else {}
    api = engine()
    reclaimed = 0
    sections: list[tuple[str, list[str]]] = []
    report = api.containers.prune(dict(filters) or None)
    sections.append(("Deleted Containers:", report.deleted))
    reclaimed += report.space_reclaimed
    report = api.networks.prune(dict(filters) or None)
    sections.append(("Deleted Networks:", report.deleted))
    if volumes:
        report = api.volumes.prune({k: v for k, v in filters.items() if k == "label"} or None)
        sections.append(("Deleted Volumes:", report.deleted))
        reclaimed += report.space_reclaimed
    report = api.images.prune({**filters, "dangling": ["false" if every else "true"]})
    sections.append(("Deleted Images:", [f"untagged: {t}" for t in report.untagged]
                     + [f"deleted: {d}" for d in report.deleted]))
    reclaimed += report.space_reclaimed
    report = api.system.prune_build_cache()  # all of it: portside's steps are never "in use"
    sections.append(("Deleted build cache objects:", report.deleted))
    reclaimed += report.space_reclaimed
    for title, items in sections:
        if items:
            click.echo(title)
            for item in items:
                click.echo(item)
            click.echo()
    click.echo(f"Total reclaimed space: {human_size(reclaimed)}")
