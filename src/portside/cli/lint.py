"""`portside image lint [IMAGE] [-f Dockerfile]`: the bakery's rules, with a report and an
exit code at the `--fail-on` threshold."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("lint")
@click.argument("image", required=False)
@click.option("-f", "--file", "dockerfile", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Lint this Dockerfile (with or without an IMAGE).")
@click.option("--fail-on", default="high", show_default=True,
              help="Exit 1 when a finding is at or above: low, medium, high, critical.")
@click.option("--ignore", "ignored", multiple=True, help="A rule id to leave out (repeatable).")
@click.option("--max-layers", type=click.IntRange(1), default=20, show_default=True,
              help="More layers than this is a finding (PS301).")
@click.option("--expect-port", "ports", multiple=True,
              help="A port the image must expose, e.g. 8080 or 53/udp (repeatable); any "
                   "other exposed port is a finding (PS302).")
@click.option("--format", "fmt", default="table", show_default=True, help="table or json.")
def lint(image: str | None, dockerfile: Path | None, fail_on: str, ignored: tuple[str, ...],
         max_layers: int, ports: tuple[str, ...], fmt: str) -> None:
    """Check IMAGE's layers and config (secrets in any layer, caches, build tools, root,
    layer count, ports, host-specific settings) and a Dockerfile (hadolint-style rules)."""
    from portside import config
    from portside.cli.output import dump_json, table
    from portside.errors import InvalidArgument
    from portside.trust.lint.rules import Finding, check_ids
    from portside.trust.vulns import severity

    if image is None and dockerfile is None:
        raise InvalidArgument("image lint: give an IMAGE, -f DOCKERFILE, or both")
    if fmt not in ("table", "json"):
        raise InvalidArgument(f"unknown output format {fmt!r}: want table or json")
    floor = severity.rank(severity.level(fail_on))
    skip = check_ids(ignored)
    findings: list[Finding] = []
    if dockerfile is not None:
        from portside.trust.lint.dockerfile import lint_dockerfile

        try:
            text = dockerfile.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"{dockerfile}: cannot read it: {exc}") from exc
        findings += lint_dockerfile(text, str(dockerfile))
    if image is not None:
        from portside.store.images import ImageStore
        from portside.trust.lint.image import lint_image

        store = ImageStore(config.root())
        findings += lint_image(store, store.get(image), max_layers, ports or None)
    findings = [f for f in findings if f.rule not in skip]
    findings.sort(key=lambda f: -severity.rank(f.severity))
    if fmt == "json":
        dump_json([{"rule": f.rule, "severity": f.severity, "where": f.where,
                    "message": f.message} for f in findings])
    elif findings:
        table(("RULE", "SEVERITY", "WHERE", "FINDING"),
              [(f.rule, f.severity.upper(), f.where, f.message) for f in findings])
    else:
        click.echo("no findings")
    if any(severity.rank(f.severity) >= floor for f in findings):
        sys.exit(1)
