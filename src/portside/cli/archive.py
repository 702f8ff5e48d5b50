"""`portside save` and `portside load`: images to and from archives, as `docker save/load`."""

from __future__ import annotations

import sys

import click


@click.command("save")
@click.option("-o", "--output", metavar="FILE", help="Write to a file instead of standard output.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["oci", "docker"]),
    default="oci",
    show_default=True,
    help="oci: an OCI image layout tar (podman, skopeo oci-archive:); docker: a docker save archive.",
)
@click.argument("images", nargs=-1, required=True)
def save(output: str | None, fmt: str, images: tuple[str, ...]) -> None:
    """Save one or more images to a tar archive (streamed to standard output by default)."""
    from portside.store import archive
    from portside.store.images import ImageStore

    if output is None and sys.stdout.isatty():
        raise click.UsageError(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect"
        )
    store = ImageStore()
    try:
        if output is None:
            stdout = sys.stdout.buffer
            archive.save(store, images, stdout, fmt)
            stdout.flush()
        else:
            archive.save(store, images, output, fmt)
    finally:
        store.db.close()


class _LoadProgress:
    """`Loading blobs/sha256/0123abcd… 12.3MB/45.6MB` on one terminal line per file."""

    def __init__(self) -> None:
        self.shown = ("", -1)

    def __call__(self, name: str, done: int, total: int) -> None:
        from portside.cli.output import human_size

        step = done // (8 << 20)
        if (name, step) == self.shown and done < total:
            return
        self.shown = (name, step)
        label = name if len(name) < 40 else name[:39] + "…"
        line = f"Loading {label} {human_size(done)}/{human_size(total)}"
        click.echo(f"\r\033[K{line}", nl=done >= total, err=True)


@click.command("load")
@click.option(
    "-i",
    "--input",
    "input_",
    metavar="FILE",
    help="Read from a tar archive file or an OCI layout directory instead of standard input.",
)
@click.option(
    "-q", "--quiet", is_flag=True, help="Suppress the progress output (shown on a terminal)."
)
def load(input_: str | None, quiet: bool) -> None:
    """Load images from a tar archive (docker save or OCI layout; gzip/zstd/xz compressed too)."""
    from portside.oci import reference as refs
    from portside.store import archive
    from portside.store.images import ImageStore

    if input_ is None and sys.stdin.isatty():
        raise click.UsageError("requested load from stdin, but stdin is empty")
    progress = _LoadProgress() if not quiet and sys.stderr.isatty() else None
    store = ImageStore()
    try:
        if input_ is None:
            images = archive.load(store, sys.stdin.buffer, "standard input", progress)
        else:
            images = archive.load(store, input_, progress=progress)
    finally:
        store.db.close()
    for image in images:
        if image.tags:
            for name in image.tags:
                click.echo(f"Loaded image: {refs.parse(name).familiar()}")
        else:
            click.echo(f"Loaded image ID: {image.id}")
