"""`portside where ID|PACKAGE`: which running containers an advisory or a package is in.

The running containers come from the daemon (the engine interface); each one's packages
from the per-digest index the daemon keeps as images arrive and containers start (an image
not indexed yet is indexed once here); the advisories from the imported database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from portside.trust.vulns.db import AdvisoryDB
    from portside.trust.vulns.index import Indexed
    from portside.trust.vulns.match import Installed

Hits = dict[str, tuple["Installed", list[str], str]]

_ADVISORY_ID = re.compile(r"^[A-Z][A-Z0-9]*-[A-Za-z0-9.:_-]+$")


@dataclass
class _Row:
    container: str
    name: str
    image: str
    digest: str
    since: str
    package: str
    installed: str
    fixed: str
    ids: list[str]


@click.command("where")
@click.argument("query")
@click.option("--format", "fmt", default="table", show_default=True, help="table or json.")
def where(query: str, fmt: str) -> None:
    """Every running container affected by advisory ID (or its CVE alias), or holding
    PACKAGE, with the image digest, since when it runs and the fixed version."""
    from portside import config
    from portside.cli.engine import engine
    from portside.cli.output import dump_json, table
    from portside.engine.interface import at
    from portside.errors import InvalidArgument, NotFound
    from portside.store.images import ImageStore
    from portside.trust.vulns.db import AdvisoryDB
    from portside.trust.vulns.index import PackageIndex
    if fmt not in ("table", "json"):
        raise InvalidArgument(f"unknown output format {fmt!r}: want table or json")
    root = config.root()
    db = AdvisoryDB(root)
    ids: set[str] = set()
    try:
        ids = set(db.resolve(query))
    except NotFound:
        if _ADVISORY_ID.match(query) and not query.islower():
            raise
    eng = engine()
    store = ImageStore(root)
    index = PackageIndex(root)
    by_config = {image.config_digest: image for image in store.list()}
    rows: list[_Row] = []
    hits_of: dict[str, Hits] = {}  # per image, not per container
    for c in eng.containers.list():
        image = by_config.get(c.image_id)
        if image is None:
            continue
        if image.manifest_digest not in hits_of:
            indexed = index.ensure(store, image)
            hits_of[image.manifest_digest] = _hits(indexed, db, ids, query)
        hits = hits_of[image.manifest_digest]
        if not hits:
            continue
        started = str(at(eng.containers.inspect(c.id), "State", "StartedAt") or "")
        for package, found, fixed in hits.values():
            rows.append(_Row(c.id[:12], c.name, c.image, image.manifest_digest, started,
                             package.name, package.version, fixed, sorted(set(found))))
    if fmt == "json":
        dump_json([row.__dict__ for row in rows])
        return
    if not rows:
        click.echo(f"no running container is affected by {query}" if ids
                   else f"no running container holds a package named {query}")
        return
    table(("CONTAINER", "NAME", "IMAGE", "DIGEST", "RUNNING SINCE", "PACKAGE", "INSTALLED",
           "FIXED", "IDS"),
          [(r.container, r.name, r.image, r.digest[:19], r.since[:19] or "-", r.package,
            r.installed, r.fixed or "-", ",".join(r.ids) or "-") for r in rows])


def _hits(indexed: Indexed, db: AdvisoryDB, ids: set[str], query: str) -> Hits:
    """package name -> (package, advisory ids, fixed version) of one indexed image."""
    from portside.trust.vulns.match import match

    findings = match(indexed.packages, db, indexed.distro, indexed.release)
    hits: Hits = {}
    if ids:
        for f in findings:
            if f.advisory.id in ids:
                hits.setdefault(f.package.name, (f.package, [], f.fixed))[1].append(f.advisory.id)
        return hits
    for p in indexed.packages:
        if query in (p.name, p.source):
            mine = [f for f in findings if f.package.name == p.name]
            hits[p.name] = (p, [f.advisory.id for f in mine],
                            _highest([f.fixed for f in mine if f.fixed], p.ecosystem))
    return hits


def _highest(fixes: list[str], ecosystem: str) -> str:
    """The fix that mends them all: the highest fixed version, in the ecosystem's order."""
    from portside.trust.vulns.versions import ordering

    order = ordering(ecosystem)
    keyed = [(order(v), v) for v in fixes] if order else []
    if keyed and all(k is not None for k, _ in keyed):
        return max(keyed, key=lambda kv: kv[0])[1]  # type: ignore[arg-type,return-value]
    return max(fixes, default="")
