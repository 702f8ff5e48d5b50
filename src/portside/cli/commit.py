"""`portside diff` and `portside commit`: a container's filesystem changes."""

from __future__ import annotations

import click

from portside.client.transport import Client


@click.command("diff")
@click.argument("container")
def diff(container: str) -> None:
    """List files changed in a container: A added, C changed, D deleted."""
    for change in Client().get(f"/containers/{container}/changes") or []:
        click.echo(f"{'CAD'[change['Kind']]} {change['Path']}")


@click.command("commit")
@click.option("-m", "--message", default="", help="Commit message.")
@click.option("-a", "--author", default="", help="Author.")
@click.option("-p/--pause", "--pause/--no-pause", default=True, help="Pause while committing.")
@click.argument("container")
@click.argument("repository", required=False)
def commit(message: str, author: str, pause: bool, container: str,
           repository: str | None) -> None:
    """Create a new image from a container's changes; print its id."""
    params = {"container": container, "comment": message, "author": author, "pause": pause}
    if repository:
        repo, _, tag = repository.rpartition(":") if ":" in repository.split("/")[-1] else (
            repository, "", "")
        params.update(repo=repo, tag=tag or "latest")
    click.echo(Client().post("/commit", **params)["Id"])
