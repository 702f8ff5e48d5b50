"""`portside trace CONTAINER`: container -> image digest -> layer -> Dockerfile line -> commit."""

from __future__ import annotations

import click


@click.command()
@click.argument("container")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def trace(container: str, fmt: str) -> None:
    """Show where CONTAINER's image came from, layer by layer, down to the git commit."""
    from portside.cli.engine import engine
    from portside.cli.output import dump_json, human_size
    from portside.trust import trace as trace_mod

    api = engine()
    doc = api.containers.inspect(container)
    image_id = str(doc.get("Image", ""))
    image = api.images.inspect(image_id)
    rows = [trace_mod.HistoryRow(e.created_by, e.size, e.comment)
            for e in api.images.history(image_id)]
    found = trace_mod.trace(doc, image, rows)
    if fmt == "json":
        dump_json(found.to_json())
        return
    click.echo(f"container  {found.container} ({found.container_id[:12]})")
    click.echo(f"image      {found.image} {found.manifest_digest} (id {found.image_id})")
    for name in found.repo_digests:
        click.echo(f"           {name}")
    if found.revision:
        dirty = " (uncommitted changes)" if found.dirty == "true" else ""
        click.echo(f"commit     {found.revision}{dirty}" +
                   (f" from {found.source}" if found.source else ""))
    else:
        click.echo("commit     (not recorded: not built by portside from a git checkout)")
    if found.base:
        click.echo(f"base       {found.base}")
    click.echo("layers")
    for layer in found.layers:
        step = layer.step or "(no build record)"
        by = layer.created_by if len(layer.created_by) <= 60 else layer.created_by[:59] + "…"
        click.echo(f"  {layer.digest}  {human_size(layer.size):>9}  {step}  {by}")
