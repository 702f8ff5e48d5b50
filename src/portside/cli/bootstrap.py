"""`portside image bootstrap busybox|debian`: base images made from Debian packages."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from portside.store.bootstrap import Progress

if TYPE_CHECKING:
    from portside.engine.interface import EngineAPI
    from portside.store.images import ImageStore


def _progress(quiet: bool) -> Progress:
    """Progress lines on stderr for a person at a terminal; nothing for scripts."""
    if quiet or not sys.stderr.isatty():
        return lambda _line: None
    return lambda line: click.echo(line, err=True)


def _report(image_id: str, tags: tuple[str, ...], quiet: bool) -> None:
    """`Tagged NAME` per requested name, then the image id (only the id with --quiet)."""
    from portside.oci import reference as refs

    if not quiet:
        for tag in tags:
            click.echo(f"Tagged {refs.parse_tagged(tag).familiar()}")
    click.echo(image_id)


@contextlib.contextmanager
def _scratch() -> Iterator[ImageStore]:
    """A private store in a temporary directory: the image is made there (no daemon's store
    is written by this process), then handed to the daemon (`_hand_over`)."""
    import shutil
    import tempfile

    from portside.store.bootstrap import remove_tree
    from portside.store.images import ImageStore

    top = Path(tempfile.mkdtemp(prefix="portside-bootstrap-"))
    store = ImageStore(top)
    try:
        yield store
    finally:
        store.db.close()
        remove_tree(top)
        shutil.rmtree(top, ignore_errors=True)


def _hand_over(api: EngineAPI, store: ImageStore, tags: tuple[str, ...]) -> None:
    """The made image into the daemon's store: an OCI archive streamed to its `load`."""
    import os
    import threading

    from portside.store import archive

    rfd, wfd = os.pipe()
    failed: list[BaseException] = []

    def produce() -> None:
        try:
            with os.fdopen(wfd, "wb") as w:
                archive.save(store, list(tags), w, format="oci")
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        with os.fdopen(rfd, "rb") as r:
            api.images.load(r)
    finally:
        thread.join()
    if failed:
        raise failed[0]


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
    from portside.cli.engine import engine
    from portside.store.bootstrap import bootstrap_busybox

    tags = tags or ("busybox:latest",)
    with _scratch() as store:
        result = bootstrap_busybox(
            store, tags, binary, "" if compression == "none" else compression, _progress(quiet)
        )
        _hand_over(engine(), store, tags)
    _report(result.image.id, tags, quiet)


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
    from portside.cli.engine import engine
    from portside.store.bootstrap import CACHE_KEY, bootstrap_debian, debian_request

    tags = tags or (f"debian:{suite}",)
    key = debian_request(suite, variant, include, mirror).key
    api = engine()
    say = _progress(quiet)
    # The cache is the daemon's store: an image labelled with the request's key.
    cached = [] if no_cache else api.images.list(filters={"label": [f"{CACHE_KEY}={key}"]})
    if cached:
        found = cached[0].id
        say(f"using cached image {found.removeprefix('sha256:')[:12]} for {suite} ({variant})")
        for tag in tags:
            api.images.tag(found, tag)
        _report(found, tags, quiet)
        return
    with _scratch() as store:
        result = bootstrap_debian(
            store, suite, variant, include, mirror, tags,
            "" if compression == "none" else compression, False, say,
        )
        _hand_over(api, store, tags)
    _report(result.image.id, tags, quiet)
