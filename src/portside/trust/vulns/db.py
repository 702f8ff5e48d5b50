"""The advisory database: OSV records (osv.dev's export zips, directories of JSON files)
in SQLite under the root (`vulns.db`).

An import is one write transaction: a source that cannot be read (a missing path, a zip
that is not one) rolls everything back, so the database is as it was before. A record
that does not parse or lacks what OSV requires (`id`, `modified`) is skipped and counted,
never fatal. A record already stored is replaced only by one modified later or at the same
time, so importing a newer export updates what `scan` and `where` answer.
"""

from __future__ import annotations

import json
import re
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portside import sqlitedb
from portside.errors import InvalidArgument, NotFound
from portside.trust.vulns import severity

# OSV's ecosystems (ossf.github.io/osv-schema, "Defined ecosystems")
ECOSYSTEMS = (
    "AlmaLinux", "Alpine", "Android", "Bioconductor", "Bitnami", "Chainguard", "CRAN",
    "crates.io", "Debian", "GHC", "GitHub Actions", "Go", "Hackage", "Hex", "Linux",
    "Mageia", "Maven", "MinimOS", "npm", "NuGet", "openSUSE", "OSS-Fuzz", "Packagist",
    "Photon OS", "Pub", "PyPI", "Red Hat", "Rocky Linux", "RubyGems", "SUSE", "SwiftURL",
    "Ubuntu", "Wolfi",
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS advisories (
    id TEXT PRIMARY KEY, modified TEXT NOT NULL, published TEXT, summary TEXT,
    aliases TEXT NOT NULL, severity TEXT NOT NULL, score REAL NOT NULL, withdrawn TEXT
);
CREATE TABLE IF NOT EXISTS affected (
    advisory TEXT NOT NULL REFERENCES advisories(id) ON DELETE CASCADE,
    ecosystem TEXT NOT NULL, release TEXT NOT NULL, name TEXT NOT NULL,
    ranges TEXT NOT NULL, versions TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS affected_by_name ON affected(name, ecosystem);
CREATE INDEX IF NOT EXISTS affected_by_advisory ON affected(advisory);
CREATE TABLE IF NOT EXISTS aliases (alias TEXT NOT NULL, advisory TEXT NOT NULL
    REFERENCES advisories(id) ON DELETE CASCADE);
CREATE INDEX IF NOT EXISTS aliases_by_alias ON aliases(alias);
CREATE TABLE IF NOT EXISTS imports (
    at REAL NOT NULL, source TEXT NOT NULL, stored INTEGER NOT NULL,
    unchanged INTEGER NOT NULL, skipped INTEGER NOT NULL
);
"""


class UnknownEcosystem(InvalidArgument):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown ecosystem {name!r}: OSV's are {', '.join(ECOSYSTEMS)}")


class ImportFailed(InvalidArgument):
    """A source could not be read; nothing of this import was kept."""


def ecosystem_name(text: str) -> str:
    """A user's ecosystem name as OSV spells it (case-insensitive), or UnknownEcosystem."""
    for name in ECOSYSTEMS:
        if name.lower() == text.strip().lower():
            return name
    raise UnknownEcosystem(text)


@dataclass
class ImportReport:
    stored: int = 0
    unchanged: int = 0
    skipped: int = 0
    filtered: int = 0
    problems: list[str] = field(default_factory=list)  # the first few skipped, with where


@dataclass(frozen=True)
class Affected:
    advisory: str
    ecosystem: str
    release: str
    name: str
    ranges: list[dict[str, Any]]
    versions: list[str]


@dataclass(frozen=True)
class Advisory:
    id: str
    modified: str
    summary: str
    aliases: tuple[str, ...]
    severity: str
    score: float


def path(root: Path) -> Path:
    return root / "vulns.db"


class AdvisoryDB:
    """OSV advisories under one root; `import_sources` writes, the rest reads."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.conn = sqlitedb.connect(path(root), SCHEMA)

    def close(self) -> None:
        self.conn.close()

    # -- import --

    def import_sources(self, sources: Iterable[Path], only: str | None = None) -> ImportReport:
        """Import every record of `sources` (zips, directories, .json files) in one transaction."""
        sources = list(sources)
        for source in sources:
            if not source.exists():
                raise ImportFailed(f"{source}: no such file or directory")
        report = ImportReport()
        try:
            with sqlitedb.transaction(self.conn):
                for source in sources:
                    before = (report.stored, report.unchanged, report.skipped)
                    for where, data in _records(source):
                        self._import_one(where, data, only, report)
                    self.conn.execute(
                        "INSERT INTO imports VALUES (?, ?, ?, ?, ?)",
                        (time.time(), str(source), report.stored - before[0],
                         report.unchanged - before[1], report.skipped - before[2]),
                    )
        except (zipfile.BadZipFile, OSError) as exc:
            raise ImportFailed(f"import failed, database unchanged: {exc}") from exc
        return report

    def _import_one(self, where: str, data: bytes, only: str | None, report: ImportReport) -> None:
        try:
            record = json.loads(data)
            parsed = _parse(record)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            report.skipped += 1
            if len(report.problems) < 5:
                report.problems.append(f"{where}: {exc}")
            return
        advisory, affected = parsed
        if only and not any(a.ecosystem == only for a in affected):
            report.filtered += 1
            return
        row = self.conn.execute(
            "SELECT modified FROM advisories WHERE id = ?", (advisory.id,)).fetchone()
        if row and row["modified"] > advisory.modified:
            report.unchanged += 1
            return
        self.conn.execute("DELETE FROM advisories WHERE id = ?", (advisory.id,))
        self.conn.execute(
            "INSERT INTO advisories VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (advisory.id, advisory.modified, record.get("published"), advisory.summary,
             json.dumps(advisory.aliases), advisory.severity, advisory.score,
             record.get("withdrawn")),
        )
        self.conn.executemany(
            "INSERT INTO affected VALUES (?, ?, ?, ?, ?, ?)",
            [(a.advisory, a.ecosystem, a.release, a.name, json.dumps(a.ranges),
              json.dumps(a.versions)) for a in affected],
        )
        # `where CVE-...` finds the advisory by any name it goes by: its aliases, the
        # upstream ids (DEBIAN-CVE-*), and the CVEs a DSA/DLA fixes (`related`)
        names = {*advisory.aliases, *_strings(record.get("upstream")),
                 *_strings(record.get("related"))}
        self.conn.executemany("INSERT INTO aliases VALUES (?, ?)",
                              [(name, advisory.id) for name in sorted(names)])
        report.stored += 1

    # -- reading --

    def status(self) -> dict[str, Any]:
        """What is loaded: counts in all and per ecosystem, and the imports, newest first."""
        per = {r["ecosystem"]: r["n"] for r in self.conn.execute(
            "SELECT ecosystem, COUNT(DISTINCT advisory) AS n FROM affected GROUP BY ecosystem "
            "ORDER BY ecosystem")}
        total = self.conn.execute("SELECT COUNT(*), MAX(modified) FROM advisories").fetchone()
        imports = [dict(r) for r in self.conn.execute(
            "SELECT at, source, stored, unchanged, skipped FROM imports ORDER BY at DESC LIMIT 20")]
        return {"advisories": total[0], "newest_modified": total[1], "ecosystems": per,
                "imports": imports}

    def affecting(self, names: Iterable[tuple[str, str]]) -> Iterator[Affected]:
        """The affected entries for (ecosystem, name) pairs, withdrawn advisories left out."""
        wanted = sorted(set(names))
        for start in range(0, len(wanted), 400):
            chunk = wanted[start : start + 400]
            marks = ",".join("(?, ?)" for _ in chunk)
            params = [v for pair in chunk for v in (pair[1], pair[0])]
            rows = self.conn.execute(
                "SELECT f.* FROM affected f JOIN advisories a ON a.id = f.advisory "
                f"WHERE (f.name, f.ecosystem) IN (VALUES {marks}) AND a.withdrawn IS NULL",
                params)
            for r in rows:
                listed = r["versions"]
                yield Affected(r["advisory"], r["ecosystem"], r["release"], r["name"],
                               json.loads(r["ranges"]),
                               json.loads(listed) if listed != "[]" else [])

    def advisories(self, ids: Iterable[str]) -> dict[str, Advisory]:
        found: dict[str, Advisory] = {}
        wanted = sorted(set(ids))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = self.conn.execute(
                f"SELECT * FROM advisories WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            for r in rows:
                found[r["id"]] = Advisory(r["id"], r["modified"], r["summary"] or "",
                                          tuple(json.loads(r["aliases"])), r["severity"],
                                          r["score"])
        return found

    def resolve(self, ident: str) -> list[str]:
        """The advisory ids an id or alias (a CVE) names; NotFound when none."""
        ids = {r[0] for r in self.conn.execute("SELECT id FROM advisories WHERE id = ?", (ident,))}
        ids |= {r[0] for r in self.conn.execute(
            "SELECT advisory FROM aliases WHERE alias = ?", (ident,))}
        if not ids:
            raise NotFound(f"no advisory {ident!r} in the database (portside scan db import)")
        return sorted(ids)

    def affected_of(self, ids: Iterable[str]) -> list[Affected]:
        wanted = list(ids)
        rows = self.conn.execute(
            f"SELECT * FROM affected WHERE advisory IN ({','.join('?' * len(wanted))})", wanted)
        return [Affected(r["advisory"], r["ecosystem"], r["release"], r["name"],
                         json.loads(r["ranges"]), json.loads(r["versions"])) for r in rows]


def _records(source: Path) -> Iterator[tuple[str, bytes]]:
    if source.is_dir():
        for file in sorted(source.rglob("*.json")):
            yield str(file), file.read_bytes()
    elif zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            for info in archive.infolist():
                if info.filename.endswith(".json") and not info.is_dir():
                    yield f"{source}:{info.filename}", archive.read(info)
    elif source.suffix == ".json":
        yield str(source), source.read_bytes()
    else:
        raise zipfile.BadZipFile(f"{source}: neither a zip archive, a directory nor a .json file")


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _text(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key!r} is missing or not a string")
    return value


def _parse(record: Any) -> tuple[Advisory, list[Affected]]:
    """An OSV record (osv-schema 1.x) checked for what matching needs."""
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    ident, modified = _text(record, "id"), _text(record, "modified")
    aliases = record.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise ValueError("'aliases' is not a list of strings")
    affected: list[Affected] = []
    for entry in record.get("affected") or []:
        package = entry.get("package") or {}
        ecosystem, name = _text(package, "ecosystem"), _text(package, "name")
        ranges = entry.get("ranges") or []
        versions = entry.get("versions") or []
        if not isinstance(ranges, list) or not isinstance(versions, list):
            raise ValueError(f"{name}: 'ranges' and 'versions' must be lists")
        for r in ranges:
            if not isinstance(r.get("events"), list) or not isinstance(r.get("type"), str):
                raise ValueError(f"{name}: a range without a type or events")
        base, _, release = ecosystem.partition(":")
        if base == "PyPI":  # PEP 503, as match.normalise compares them
            name = re.sub(r"[-_.]+", "-", name).lower()
        affected.append(Affected(ident, base, release, name, ranges, [str(v) for v in versions]))
    level, score = severity.of_record(record)
    summary = str(record.get("summary") or record.get("details") or "")[:300]
    return Advisory(ident, modified, summary, tuple(aliases), level, score), affected
