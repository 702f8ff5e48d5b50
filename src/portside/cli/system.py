"""`portside system df`: where the space goes."""

from __future__ import annotations

import click

from portside.cli.output import human_size, table


@click.group()
def system() -> None:
    """Manage portside."""


@system.command()
@click.option("--format", "fmt", default="table", help="table or json.")
def df(fmt: str) -> None:
    """Show disk usage: images (blobs), layer snapshots, what is reclaimable."""
    from portside.cli.output import dump_json
    from portside.store.images import ImageStore

    usage = ImageStore().disk_usage()
    if fmt == "json":
        dump_json(usage)
        return
    table(
        ["TYPE", "TOTAL", "SIZE", "RECLAIMABLE"],
        [
            ["Images", usage["images"], human_size(usage["blobs"]), human_size(usage["reclaimable"])],
            ["Layer snapshots", "", human_size(usage["snapshots"]), ""],
        ],
    )
