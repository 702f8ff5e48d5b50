"""Docker's way with several names on one command line: act on each in turn, say which
failed on stderr (one line each), and exit 1 at the end if any did."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from portside.cli.output import dump_json
from portside.engine.interface import Document
from portside.errors import PortsideError


def for_each(names: tuple[str, ...], action: Callable[[str], object]) -> None:
    """Run `action` for every name, echoing each name that succeeded (`docker rm a b`)."""
    failed = False
    for name in names:
        try:
            action(name)
            click.echo(name)
        except PortsideError as exc:
            click.echo(f"Error response from daemon: {exc}", err=True)
            failed = True
    if failed:
        sys.exit(1)


def inspect_each(names: tuple[str, ...], fetch: Callable[[str], Document]) -> None:
    """Print the documents `fetch(name)` gives as one JSON array (`docker ... inspect`)."""
    docs: list[Document] = []
    failed = False
    for name in names:
        try:
            docs.append(fetch(name))
        except PortsideError as exc:
            click.echo(f"Error: {exc}", err=True)
            failed = True
    dump_json(docs)
    if failed:
        sys.exit(1)
