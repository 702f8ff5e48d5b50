"""`portside image test IMAGE -c tests.yaml`: container-structure-test style tests, files
and metadata read from the image, commands run in real containers through the daemon."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("test")
@click.argument("image")
@click.option("-c", "--config", "configs", multiple=True, required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="A test file in container-structure-test's schema (repeatable).")
@click.option("--format", "fmt", default="table", show_default=True, help="table or json.")
def image_test(image: str, configs: tuple[Path, ...], fmt: str) -> None:
    """Run structure tests against IMAGE; exit 1 when any fails."""
    from portside import config
    from portside.cli.output import dump_json
    from portside.errors import InvalidArgument
    from portside.store.images import ImageStore
    from portside.trust.structure import spec as specs
    from portside.trust.structure.run import run_tests

    if fmt not in ("table", "json"):
        raise InvalidArgument(f"unknown output format {fmt!r}: want table or json")
    loaded = []
    for path in configs:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"{path}: cannot read it: {exc}") from exc
        loaded.append(specs.load(text, str(path)))
    store = ImageStore(config.root())
    found = store.get(image)
    containers = None
    if any(s.get("commandTests") for s in loaded):
        from portside.cli.engine import engine

        containers = engine().containers
    results = [r for s in loaded for r in run_tests(s, store, found, image, containers)]
    if fmt == "json":
        dump_json([r.__dict__ for r in results])
    else:
        for r in results:
            click.echo(f"{'PASS' if r.passed else 'FAIL'}  {r.kind}: {r.name}")
            for error in r.errors:
                click.echo(f"      {error}")
        failed = sum(not r.passed for r in results)
        click.echo(f"{len(results)} tests, {len(results) - failed} passed, {failed} failed")
    if any(not r.passed for r in results):
        sys.exit(1)
