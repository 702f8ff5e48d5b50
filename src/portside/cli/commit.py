"""`portside diff` and `portside commit`: a container's filesystem changes."""

from __future__ import annotations

import click

from portside.cli.engine import engine
from portside.engine.interface import CommitOptions


@click.command("diff")
@click.argument("container")
def diff(container: str) -> None:
    """List files changed in a container: A added, C changed, D deleted."""
    for change in engine().containers.changes(container):
        click.echo(f"{'CAD'[change.kind]} {change.path}")


@click.command("commit")
@click.option("-m", "--message", default="", help="Commit message.")
@click.option("-a", "--author", default="", help="Author.")
@click.option("-p/--pause", "--pause/--no-pause", default=True, help="Pause while committing.")
@click.argument("container")
@click.argument("repository", required=False)
def commit(message: str, author: str, pause: bool, container: str,
           repository: str | None) -> None:
    """Create a new image from a container's changes; print its id."""
    click.echo(engine().containers.commit(container, CommitOptions(
        reference=repository or "", comment=message, author=author, pause=pause)))
