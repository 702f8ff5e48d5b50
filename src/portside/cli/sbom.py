"""`portside sbom IMAGE`: the packages really in an image, as SPDX or CycloneDX JSON."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("sbom")
@click.argument("image")
@click.option("--format", "fmt", default="spdx-json", show_default=True,
              help="spdx-json (SPDX 2.3) or cyclonedx-json (CycloneDX 1.6).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the document to a file instead of standard output.")
def sbom(image: str, fmt: str, output: Path | None) -> None:
    """The software bill of materials of IMAGE, read from its layers: dpkg, busybox, Python,
    npm and Go packages, each with the layer it came from."""
    from portside import config
    from portside.store.images import ImageStore
    from portside.trust.sbom import formats
    from portside.trust.sbom.inventory import collect

    if fmt not in formats.FORMATS:
        raise formats.BadFormat(fmt)
    store = ImageStore(config.root())
    found = store.get(image)
    document = formats.render(collect(store, found), fmt, image)
    if output is None:
        click.echo(document)
        return
    partial = output.with_name(f".{output.name}.partial")
    partial.write_text(document + "\n")
    partial.replace(output)  # never a half-written SBOM under the name asked for
