"""`portside export` (a container's filesystem as a tar) and `portside import` (a tarball
as a one-layer image), as `docker export` and `docker import`."""

from __future__ import annotations

import os
import sys

import click

from portside.cli.engine import engine
from portside.engine.interface import ImportOptions
from portside.errors import InvalidArgument

# -- the commands ------------------------------------------------------------------------------


@click.command("export")
@click.option("-o", "--output", help="Write to a file, instead of STDOUT.")
@click.argument("container")
def export(output: str | None, container: str) -> None:
    """Export a container's filesystem as a tar archive."""
    if output is None and sys.stdout.isatty():
        raise InvalidArgument("cowardly refusing to save to a terminal. Use the -o flag or"
                              " redirect")
    if output is None:
        engine().containers.export(container, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    try:
        with open(output, "wb") as target:
            engine().containers.export(container, target)
    except BaseException:
        os.unlink(output)  # nothing half-written left behind
        raise


@click.command("import")
@click.option("-c", "--change", "changes", multiple=True,
              help="Apply Dockerfile instruction to the created image.")
@click.option("-m", "--message", default="", help="Set commit message for imported image.")
@click.option("--platform", default="", help="Set platform if server is multi-platform capable.")
@click.argument("file")
@click.argument("reference", required=False)
def import_(changes: tuple[str, ...], message: str, platform: str, file: str,
            reference: str | None) -> None:
    """Import the contents from a tarball (a file, or - for stdin) to create an image."""
    options = ImportOptions(reference=reference or "", changes=list(changes), message=message,
                            platform=platform)
    images = engine().images
    if file == "-":
        image_id = images.import_(sys.stdin.buffer, options)
    else:
        if "://" in file:
            raise InvalidArgument("importing from a URL is not supported: download it first")
        try:
            source = open(file, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise InvalidArgument(f"open {file}: {exc.strerror}") from None
        with source:
            image_id = images.import_(source, options)
    click.echo(image_id)
