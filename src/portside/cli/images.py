"""Image commands: `images`, `image ls|inspect|history|rm|prune|tag`, `tag`, `rmi`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from portside.cli.main import LazyGroup
from portside.cli.output import dump_json, human_size, since, table
from portside.times import parse_time

if TYPE_CHECKING:
    from portside.store.images import ImageStore


def _store() -> ImageStore:
    from portside.store.images import ImageStore

    return ImageStore()


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
    import fnmatch

    from portside.errors import InvalidArgument
    from portside.oci import reference as refs

    rows = []
    wanted: dict[str, str] = {}
    for f in filters:
        key, sep, value = f.partition("=")
        if not sep or key not in ("dangling", "reference"):
            raise InvalidArgument(f"invalid filter {f!r} (use dangling=true|false or reference=PATTERN)")
        wanted[key] = value
    for image in _store().list():
        names: list[refs.Reference | None] = [refs.parse(t) for t in image.tags] or [None]
        if "dangling" in wanted and (wanted["dangling"] == "true") != (not image.tags):
            continue
        for ref in names:
            repo, tag = (ref.familiar_repository, ref.tag or "<none>") if ref else ("<none>", "<none>")
            pattern = wanted.get("reference") or repository
            if pattern and not (ref and (fnmatch.fnmatch(f"{repo}:{tag}", pattern)
                                         or fnmatch.fnmatch(repo, pattern))):
                continue
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
                "Repository": repo, "Tag": tag, "ID": image.short_id, "Digest": image.manifest_digest,
                "CreatedAt": image.created, "Size": human_size(image.size),
            })
        return
    headers = ["REPOSITORY", "TAG", *(["DIGEST"] if digests else []), "IMAGE ID", "CREATED", "SIZE"]
    out = []
    for repo, tag, image in rows:
        created = parse_time(image.created)
        out.append([
            repo, tag, *([image.manifest_digest] if digests else []),
            image.id if no_trunc else image.short_id,
            since(created) if created else "N/A",
            human_size(image.size),
        ])
    table(headers, out)


@click.command()
@click.argument("names", nargs=-1, required=True)
@click.option("--format", "fmt", default="json", help="json (default) or a field name: Id, RepoTags...")
def inspect(names: tuple[str, ...], fmt: str) -> None:
    """Show the image config, manifest and annotations as JSON."""
    from portside.store.describe import inspect as describe

    store = _store()
    docs = [describe(store, store.get(n)) for n in names]
    if fmt == "json":
        dump_json(docs)
    else:
        for d in docs:
            click.echo(d.get(fmt.strip("{}. "), ""))


@click.command()
@click.argument("name")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option("--format", "fmt", default="table", help="table or json.")
def history(name: str, quiet: bool, no_trunc: bool, fmt: str) -> None:
    """Show which step made each layer of an image."""
    from portside.store.describe import history as describe_history

    store = _store()
    image = store.get(name)
    rows = describe_history(store, image)
    if fmt == "json":
        dump_json(rows)
        return
    if quiet:
        click.echo(image.id if no_trunc else image.short_id)
        return
    out = []
    for r in rows:
        ident = r.get("Id")
        shown_id = (ident if no_trunc else ident.split(":")[1][:12]) if ident else "<missing>"
        created = parse_time(r["Created"])
        by = r["CreatedBy"] if no_trunc or len(r["CreatedBy"]) <= 45 else r["CreatedBy"][:44] + "…"
        out.append([shown_id, since(created) if created else "N/A", by, human_size(r["Size"]),
                    r["Comment"]])
    table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], out)


@click.command()
@click.argument("source")
@click.argument("target")
def tag(source: str, target: str) -> None:
    """Create a tag TARGET that refers to SOURCE."""
    _store().tag(source, target)


@click.command()
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Remove even if a container uses it.")
def rmi(names: tuple[str, ...], force: bool) -> None:
    """Remove images (untag, then delete the last name's image)."""
    store = _store()
    failed = False
    from portside.errors import PortsideError

    for name in names:
        try:
            report = store.remove(name, force=force)
        except PortsideError as exc:
            if len(names) == 1:
                raise
            click.echo(f"Error: {exc}", err=True)
            failed = True
            continue
        for t in report.untagged:
            click.echo(f"Untagged: {t}")
        for d in report.deleted:
            click.echo(f"Deleted: {d}")
    if failed:
        raise SystemExit(1)


@click.command()
@click.option("-a", "--all", "all_unused", is_flag=True, help="Remove all unused images, not just dangling.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
def prune(all_unused: bool, force: bool) -> None:
    """Remove unused images and the blobs and snapshots only they used."""
    report = _store().prune(all_unused=all_unused)
    if report.deleted:
        click.echo("Deleted Images:")
        for t in report.untagged:
            click.echo(f"untagged: {t}")
        for d in report.deleted:
            click.echo(f"deleted: {d}")
        click.echo()
    click.echo(f"Total reclaimed space: {human_size(report.reclaimed)}")


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
    },
)
for _cmd, _names in ((images, ("ls", "list")), (inspect, ("inspect",)), (history, ("history",)),
                     (tag, ("tag",)), (rmi, ("rm", "remove")), (prune, ("prune",))):
    for _name in _names:
        image.add_command(_cmd, _name)
