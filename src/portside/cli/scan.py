"""`portside scan IMAGE` and `portside scan db import|status`: offline vulnerability scans
against OSV advisories imported under the root."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click


class _ScanGroup(click.Group):
    """`scan IMAGE [options]` beside `scan db ...`: a first word that is no sub-command is
    the image, so the two read as Trivy's `trivy image X` and `trivy db` would."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["image", *args]
        return super().parse_args(ctx, args)


@click.group("scan", cls=_ScanGroup, context_settings={"help_option_names": ["-h", "--help"]})
def scan() -> None:
    """Scan an image for known vulnerabilities (`scan IMAGE`), or manage the advisory
    database (`scan db import|status`)."""


@scan.command("image")
@click.argument("image")
@click.option("--format", "fmt", default="table", show_default=True, help="table, json or sarif.")
@click.option("--severity", "at_least", default="", help="Report only findings at or above "
              "this level: low, medium, high, critical.")
@click.option("--exit-code", type=click.IntRange(0, 255), default=0, show_default=True,
              help="Exit with this code when anything is reported.")
@click.option("--ignore-unfixed", is_flag=True, help="Leave out findings without a fixed version.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the report to a file instead of standard output.")
def scan_image(image: str, fmt: str, at_least: str, exit_code: int, ignore_unfixed: bool,
               output: Path | None) -> None:
    """Match IMAGE's packages against the imported advisories."""
    from portside import config
    from portside.store.images import ImageStore
    from portside.trust.vulns import report, severity
    from portside.trust.vulns.db import AdvisoryDB
    from portside.trust.vulns.index import PackageIndex
    from portside.trust.vulns.match import match, select

    if fmt not in report.FORMATS:
        raise report.BadFormat(fmt)
    floor = severity.level(at_least) if at_least else ""
    root = config.root()
    store = ImageStore(root)
    found = store.get(image)
    indexed = PackageIndex(root).ensure(store, found)
    db = AdvisoryDB(root)
    findings = select(match(indexed.packages, db, indexed.distro, indexed.release), floor,
                      ignore_unfixed)
    if fmt == "json":
        text = report.to_json(image, found.manifest_digest, findings)
    elif fmt == "sarif":
        text = report.to_sarif(image, found.manifest_digest, findings)
    else:
        text = _table(image, found.manifest_digest, findings, db.status()["advisories"])
    if output is None:
        click.echo(text)
    else:
        partial = output.with_name(f".{output.name}.partial")
        partial.write_text(text + "\n")
        partial.replace(output)
    if findings and exit_code:
        sys.exit(exit_code)


def _table(image: str, digest: str, findings: list[Any], loaded: int) -> str:
    from portside.trust.vulns import severity

    headers = ("PACKAGE", "INSTALLED", "FIXED", "ID", "SEVERITY")
    rows = [(f.package.name, f.package.version, f.fixed or "-", f.advisory.id, f.severity.upper())
            for f in findings]
    cells = [headers, *rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in cells]
    counts = {level: sum(f.severity == level for f in findings) for level in severity.LEVELS}
    summary = ", ".join(f"{n} {level}" for level, n in reversed(counts.items()) if n)
    head = (f"{image} ({digest[:19]}): {len(findings)} vulnerabilities"
            f"{' (' + summary + ')' if summary else ''}, {loaded} advisories loaded")
    return "\n".join([head, *lines]) if findings else head


@scan.group("db")
def db() -> None:
    """The advisory database under the root (OSV format, offline)."""


@db.command("import")
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--ecosystem", "only", default=None,
              help="Keep only records for this OSV ecosystem (Debian, PyPI, npm, Go...).")
def db_import(sources: tuple[Path, ...], only: str | None) -> None:
    """Import OSV records: osv.dev's export zips, directories of JSON files, single files.
    A malformed record is skipped and counted; an unreadable source changes nothing."""
    from portside import config
    from portside.trust.vulns.db import AdvisoryDB, ecosystem_name

    ecosystem = ecosystem_name(only) if only else None
    started = time.monotonic()
    report = AdvisoryDB(config.root()).import_sources(sources, ecosystem)
    took = time.monotonic() - started
    seen = report.stored + report.unchanged + report.skipped + report.filtered
    rate = f", {seen / took:,.0f} records/s" if took > 0 and seen else ""
    click.echo(f"imported {report.stored} advisories ({report.unchanged} already newer, "
               f"{report.skipped} malformed skipped"
               f"{f', {report.filtered} of other ecosystems' if only else ''}) "
               f"in {took:.2f}s{rate}")
    for problem in report.problems:
        click.echo(f"skipped {problem}", err=True)


@db.command("status")
@click.option("--format", "fmt", default="table", show_default=True, help="table or json.")
def db_status(fmt: str) -> None:
    """What is loaded: advisories per ecosystem, the newest record, and the imports."""
    from portside import config
    from portside.cli.output import dump_json, since, table
    from portside.errors import InvalidArgument
    from portside.trust.vulns.db import AdvisoryDB

    if fmt not in ("table", "json"):
        raise InvalidArgument(f"unknown output format {fmt!r}: want table or json")
    status = AdvisoryDB(config.root()).status()
    if fmt == "json":
        dump_json(status)
        return
    click.echo(f"{status['advisories']} advisories, newest modified "
               f"{status['newest_modified'] or '-'}")
    table(("ECOSYSTEM", "ADVISORIES"), sorted(status["ecosystems"].items()))
    if status["imports"]:
        click.echo("")
        table(("IMPORTED", "SOURCE", "STORED", "UNCHANGED", "SKIPPED"),
              [(since(i["at"]), i["source"], i["stored"], i["unchanged"], i["skipped"])
               for i in status["imports"]])
