"""`portside save` and `portside load`: images to and from archives, as `docker save/load`."""

from __future__ import annotations

import sys
from typing import Any

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
    import os

    from portside.cli.engine import engine

    if output is None and sys.stdout.isatty():
        raise click.UsageError(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect"
        )
    api = engine()
    if output is None:
        stdout = sys.stdout.buffer
        api.images.save(list(images), stdout, fmt)
        stdout.flush()
        return
    partial = f"{output}.partial"
    try:
        with open(partial, "wb") as out:
            api.images.save(list(images), out, fmt)
        os.replace(partial, output)  # never a cut archive under the name asked for
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


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
    import os

    from portside.cli.engine import engine
    from portside.errors import InvalidArgument
    from portside.store.archive_common import InvalidArchive

    if input_ is None and sys.stdin.isatty():
        raise click.UsageError("requested load from stdin, but stdin is empty")
    progress = _LoadProgress() if not quiet and sys.stderr.isatty() else None
    api = engine()
    try:
        if input_ is None:
            loaded = api.images.load(_Counted(sys.stdin.buffer, "standard input", 0, progress))
        elif os.path.isdir(input_):
            loaded = _load_directory(api, input_)
        else:
            try:
                source = open(input_, "rb")  # noqa: SIM115 - closed below
            except OSError as exc:
                raise InvalidArgument(f"{input_}: {(exc.strerror or str(exc)).lower()}") from None
            with source:
                size = os.fstat(source.fileno()).st_size
                loaded = api.images.load(_Counted(source, os.path.basename(input_), size,
                                                  progress))
    except InvalidArchive as exc:  # the daemon saw an upload: name the archive the user gave
        raise InvalidArchive(input_ or "standard input", exc.reason) from None
    for name in loaded:
        click.echo(f"Loaded image ID: {name}" if name.startswith("sha256:")
                   else f"Loaded image: {name}")


class _Counted:
    """A binary reader that reports how much of it was read (the upload's progress)."""

    def __init__(self, raw: Any, name: str, total: int, progress: _LoadProgress | None) -> None:
        self.raw, self.name, self.total, self.progress, self.done = raw, name, total, progress, 0

    def read(self, n: int = -1) -> bytes:
        data: bytes = self.raw.read(n)
        self.done += len(data)
        if self.progress is not None:
            self.progress(self.name, self.done, max(self.total, self.done) if data else self.done)
        return data


def _load_directory(api: Any, path: str) -> list[str]:
    """An OCI layout directory, sent as the tar of it, made while it is sent."""
    import os
    import tarfile
    import threading

    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            with os.fdopen(write_fd, "wb") as pipe, tarfile.open(fileobj=pipe, mode="w|") as tar:
                for entry in sorted(os.listdir(path)):
                    tar.add(os.path.join(path, entry), arcname=entry)
        except BaseException as exc:  # noqa: BLE001 - reported after the upload
            failure.append(exc)

    worker = threading.Thread(target=produce, daemon=True)
    worker.start()
    with os.fdopen(read_fd, "rb") as source:
        loaded: list[str] = api.images.load(source)
    worker.join()
    if failure:
        raise click.UsageError(f"cannot read {path}: {failure[0]}")
    return loaded
