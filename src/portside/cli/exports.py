"""`portside export` (a container's filesystem as a tar) and `portside import` (a tarball
as a one-layer image), as `docker export` and `docker import`."""

from __future__ import annotations

import json
import os
import sys
from typing import IO

import click

from portside.client.transport import Client, Response
from portside.errors import InvalidArgument

# -- the daemon calls (one place, to move onto the engine interface) --------------------------


def _export(container: str) -> Response:
    return Client().request("GET", f"/containers/{container}/export")


def _import(source: IO[bytes], repo: str, tag: str, message: str,
            changes: list[str]) -> str:
    from urllib.parse import urlencode

    pairs = [("fromSrc", "-"), ("repo", repo), ("tag", tag), ("message", message)]
    pairs += [("changes", c) for c in changes]  # repeated, as Docker's client sends them
    query = urlencode([(k, v) for k, v in pairs if v])
    resp = Client().request("POST", f"/images/create?{query}", upload=source)
    status = ""
    for line in resp.read().splitlines():
        if line.strip():
            doc = json.loads(line)
            if doc.get("error"):
                raise InvalidArgument(doc["error"])
            status = doc.get("status") or status
    return status


# -- the commands ------------------------------------------------------------------------------


@click.command("export")
@click.option("-o", "--output", help="Write to a file, instead of STDOUT.")
@click.argument("container")
def export(output: str | None, container: str) -> None:
    """Export a container's filesystem as a tar archive."""
    if output is None and sys.stdout.isatty():
        raise InvalidArgument("cowardly refusing to save to a terminal. Use the -o flag or"
                              " redirect")
    resp = _export(container)
    target = open(output, "wb") if output else sys.stdout.buffer  # noqa: SIM115
    try:
        while chunk := resp.read1(1 << 20):
            target.write(chunk)
        target.flush()
    except BaseException:
        if output:
            target.close()
            os.unlink(output)  # nothing half-written left behind
        raise
    finally:
        resp.sock.close()
    if output:
        target.close()


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
    repo, tag = "", ""
    if reference:
        last = reference.rsplit("/", 1)[-1]
        if ":" in last:
            repo, _, tag = reference.rpartition(":")
        else:
            repo = reference
    if file == "-":
        image_id = _import(sys.stdin.buffer, repo, tag, message, list(changes))
    else:
        if "://" in file:
            raise InvalidArgument("importing from a URL is not supported: download it first")
        try:
            source = open(file, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise InvalidArgument(f"open {file}: {exc.strerror}") from None
        with source:
            image_id = _import(source, repo, tag, message, list(changes))
    click.echo(image_id)
