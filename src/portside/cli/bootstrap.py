"""`portside image bootstrap busybox|debian`: base images made from Debian packages."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from portside.store.bootstrap import Progress, Result


def _progress(quiet: bool) -> Progress:
    """Progress lines on stderr for a person at a terminal; nothing for scripts."""
    if quiet or not sys.stderr.isatty():
        return lambda _line: None
    return lambda line: click.echo(line, err=True)


def _report(result: Result, tags: tuple[str, ...], quiet: bool) -> None:
    """`Tagged NAME` per requested name, then the image id (only the id with --quiet)."""
    from portside.oci import reference as refs

    if not quiet:
        for tag in tags:
            click.echo(f"Tagged {refs.parse_tagged(tag).familiar()}")
    click.echo(result.image.id)


@click.group()
def bootstrap() -> None:
    """Make a base image from Debian packages (no registry needed)."""


@bootstrap.command()
@click.option("-t", "--tag", "tags", multiple=True, help="Name the image (default busybox:latest).")
@click.option(
    "--busybox", "binary", type=click.Path(path_type=Path), default="/bin/busybox",
    show_default=True, help="The static busybox binary to use.",
)
@click.option(
    "--compression", type=click.Choice(["gzip", "zstd", "none"]), default="gzip",
    show_default=True,
)
@click.option("-q", "--quiet", is_flag=True, help="Print only the image id.")
def busybox(tags: tuple[str, ...], binary: Path, compression: str, quiet: bool) -> None:
    """A ~1 MB image from busybox-static: /bin/busybox, its applets, /etc/passwd."""
    from portside.store.bootstrap import bootstrap_busybox
    from portside.store.images import ImageStore

    tags = tags or ("busybox:latest",)
    result = bootstrap_busybox(
        ImageStore(), tags, binary, "" if compression == "none" else compression, _progress(quiet)
    )
    _report(result, tags, quiet)


@bootstrap.command()
@click.option("--suite", default="bookworm", show_default=True, help="Debian release.")
@click.option("--variant", default="minbase", show_default=True, help="debootstrap variant.")
@click.option(
    "--include", "include", multiple=True, metavar="PKGS",
    help="Extra packages (comma-separated; repeatable).",
)
@click.option("--mirror", default=None, help="Debian mirror (default: the one apt uses here).")
@click.option("-t", "--tag", "tags", multiple=True, help="Name the image (default debian:SUITE).")
@click.option(
    "--compression", type=click.Choice(["gzip", "zstd", "none"]), default="gzip",
    show_default=True,
)
@click.option("--no-cache", is_flag=True, help="Build again even if a cached image matches.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the image id.")
def debian(
    suite: str,
    variant: str,
    include: tuple[str, ...],
    mirror: str | None,
    tags: tuple[str, ...],
    compression: str,
    no_cache: bool,
    quiet: bool,
) -> None:
    """A Debian image made by debootstrap (cached: the same request reuses the image)."""
    from portside.store.bootstrap import bootstrap_debian
    from portside.store.images import ImageStore

    tags = tags or (f"debian:{suite}",)
    result = bootstrap_debian(
        ImageStore(), suite, variant, include, mirror, tags,
        "" if compression == "none" else compression, not no_cache, _progress(quiet),
    )
    _report(result, tags, quiet)
