"""Docker's way with several names on one command line: act on each in turn, say which
failed on stderr (one line each), and exit 1 at the end if any did."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from portside.cli.output import dump_json
from portside.client.transport import Client
from portside.errors import PortsideError


def for_each(names: tuple[str, ...], action: Callable[[Client, str], object]) -> None:
    """Run `action` for every name, echoing each name that succeeded (`docker rm a b`)."""
    client = Client()
    failed = False
    for name in names:
        try:
            action(client, name)
            click.echo(name)
        except PortsideError as exc:
            click.echo(f"Error response from daemon: {exc}", err=True)
            failed = True
    if failed:
        sys.exit(1)


def inspect_each(names: tuple[str, ...], path: Callable[[str], str]) -> None:
    """Print the documents found at `path(name)` as one JSON array (`docker ... inspect`)."""
    client = Client()
    docs: list[Any] = []
    failed = False
    for name in names:
        try:
            docs.append(client.get(path(name)))
        except PortsideError as exc:
            click.echo(f"Error: {exc}", err=True)
            failed = True
    dump_json(docs)
    if failed:
        sys.exit(1)
