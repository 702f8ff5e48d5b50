"""Image commands: `images`, `image ls|inspect|history|rm|prune|tag`, `tag`, `rmi`."""

from __future__ import annotations

import click

from portside.cli.engine import engine
from portside.cli.main import LazyGroup
from portside.cli.output import dump_json, human_size, render, since, table
from portside.engine.interface import ImageSummary


@click.command("ls")
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all images (default hides none).")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.option("--digests", is_flag=True, help="Show digests.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option("-f", "--filter", "filters", multiple=True, help="dangling=true|false, reference=PATTERN")
@click.option("--format", "fmt", default="table", help="table or json.")
@click.argument("repository", required=False)
def images(
    show_all: bool, quiet: bool, digests: bool, no_trunc: bool,
    filters: tuple[str, ...], fmt: str, repository: str | None,
) -> None:
    """List images: REPOSITORY TAG IMAGE ID CREATED SIZE, like docker."""
    from portside.errors import InvalidArgument
    from portside.oci import reference as refs

    wanted: dict[str, list[str]] = {}
    for f in filters:
        key, sep, value = f.partition("=")
        if not sep or key not in ("dangling", "reference"):
            raise InvalidArgument(f"invalid filter {f!r} (use dangling=true|false or reference=PATTERN)")
        wanted[key] = [value]
    if repository and "reference" not in wanted:
        wanted["reference"] = [repository]
    rows = []
    for image in engine().images.list(all=show_all, filters=wanted):
        names: list[refs.Reference | None] = [refs.parse(t) for t in image.tags] or [None]
        for ref in names:
            repo, tag = (ref.familiar_repository, ref.tag or "<none>") if ref else ("<none>", "<none>")
            rows.append((repo, tag, image))
    if quiet:
        seen: list[str] = []
        for _, _, image in rows:
            shown = image.id if no_trunc else image.short_id
            if shown not in seen:
                seen.append(shown)
        for s in seen:
            click.echo(s)
        return
    if fmt == "json":
        for repo, tag, image in rows:
            dump_json({
                "Repository": repo, "Tag": tag, "ID": image.short_id, "Digest": _digest(image),
                "CreatedAt": _rfc3339(image.created), "Size": human_size(image.size),
            })
        return
    headers = ["REPOSITORY", "TAG", *(["DIGEST"] if digests else []), "IMAGE ID", "CREATED", "SIZE"]
    out = []
    for repo, tag, image in rows:
        out.append([
            repo, tag, *([_digest(image) or "<none>"] if digests else []),
            image.id if no_trunc else image.short_id,
            since(image.created) if image.created else "N/A",
            human_size(image.size),
        ])
    table(headers, out)


def _digest(image: ImageSummary) -> str:
    return image.digests[0].partition("@")[2] if image.digests else ""


def _rfc3339(ts: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@click.command()
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", default="json",
              help="json (default), a field name (Id, RepoTags...) or a template: '{{.Id}}'.")
def inspect(names: tuple[str, ...], fmt: str) -> None:
    """Show the image config, manifest and annotations as JSON."""
    api = engine()
    docs = [api.images.inspect(n) for n in names]
    if fmt == "json":
        dump_json(docs)
        return
    template = fmt if "{{" in fmt else "{{." + fmt.strip("{}. ") + "}}"
    for d in docs:
        click.echo(render(template, d))


@click.command()
@click.argument("name")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option("--format", "fmt", default="table", help="table or json.")
def history(name: str, quiet: bool, no_trunc: bool, fmt: str) -> None:
    """Show which step made each layer of an image."""
    entries = engine().images.history(name)
    if fmt == "json":
        dump_json([{"Id": e.id, "Created": _rfc3339(e.created) if e.created else "",
                    "CreatedBy": e.created_by, "Size": e.size, "Comment": e.comment}
                   for e in entries])
        return
    if quiet:
        first = entries[0].id if entries else ""
        click.echo(first if no_trunc else first.removeprefix("sha256:")[:12])
        return
    out = []
    for e in entries:
        shown_id = "<missing>" if e.id in ("", "<missing>") else (
            e.id if no_trunc else e.id.removeprefix("sha256:")[:12])
        by = e.created_by if no_trunc or len(e.created_by) <= 45 else e.created_by[:44] + "…"
        out.append([shown_id, since(e.created) if e.created else "N/A", by,
                    human_size(e.size), e.comment])
    table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], out)


@click.command()
@click.argument("source")
@click.argument("target")
def tag(source: str, target: str) -> None:
    """Create a tag TARGET that refers to SOURCE."""
    engine().images.tag(source, target)


@click.command()
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Remove even if a container uses it.")
@click.option("--no-prune", is_flag=True, help="Do not delete untagged parents.")
def rmi(names: tuple[str, ...], force: bool, no_prune: bool) -> None:
    """Remove images (untag, then delete the last name's image)."""
    from portside.errors import PortsideError

    api = engine()
    failed = False
    for name in names:
        try:
            removed = api.images.remove(name, force=force, prune=not no_prune)
        except PortsideError as exc:
            if len(names) == 1:
                raise
            click.echo(f"Error: {exc}", err=True)
            failed = True
            continue
        for r in removed:
            click.echo(f"Untagged: {r.untagged}" if r.untagged else f"Deleted: {r.deleted}")
    if failed:
        raise SystemExit(1)


@click.command()
@click.option("-a", "--all", "all_unused", is_flag=True, help="Remove all unused images, not just dangling.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.option("--filter", "filters", multiple=True, help="until=TIME, label=KEY[=VALUE]")
def prune(all_unused: bool, force: bool, filters: tuple[str, ...]) -> None:
    """Remove unused images and the blobs and snapshots only they used."""
    wanted: dict[str, list[str]] = {"dangling": ["false" if all_unused else "true"]}
    for f in filters:
        key, _, value = f.partition("=")
        wanted.setdefault(key, []).append(value)
    report = engine().images.prune(wanted)
    if report.deleted or report.untagged:
        click.echo("Deleted Images:")
        for t in report.untagged:
            click.echo(f"untagged: {t}")
        for d in report.deleted:
            click.echo(f"deleted: {d}")
        click.echo()
    click.echo(f"Total reclaimed space: {human_size(report.space_reclaimed)}")


image = LazyGroup(
    "image",
    help="Manage images.",
    lazy={
        "bootstrap": "portside.cli.bootstrap:bootstrap",
        "save": "portside.cli.archive:save",
        "load": "portside.cli.archive:load",
        "build": "portside.cli.build:build",
        "push": "portside.cli.registry:push",
        "pull": "portside.cli.registry:pull",
        "import": "portside.cli.exports:import_",
        "lint": "portside.cli.lint:lint",
        "test": "portside.cli.imagetest:image_test",
    },
)
for _cmd, _names in ((images, ("ls", "list")), (inspect, ("inspect",)), (history, ("history",)),
                     (tag, ("tag",)), (rmi, ("rm", "remove")), (prune, ("prune",))):
    for _name in _names:
        image.add_command(_cmd, _name)
