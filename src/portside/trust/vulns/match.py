"""Which advisories affect which packages, by OSV's rules (osv-schema, "Evaluation").

A range's events are sorted in the ecosystem's own order (SEMVER ranges in semver's); the
version is affected once an `introduced` at or below it is passed, until a `fixed` at or
below it, or a `last_affected` below it. `affected.versions` lists versions that are
affected whatever the ranges say. Debian advisories name source packages and their
versions, so a binary package is matched through its source; its release (`Debian:12`)
must be the image's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from portside.trust.vulns import severity, versions
from portside.trust.vulns.db import Advisory, AdvisoryDB, Affected


@dataclass(frozen=True)
class Installed:
    """A package as matching sees it (from an inventory or the per-digest index)."""

    ecosystem: str
    name: str
    version: str
    source: str = ""
    source_version: str = ""
    path: str = ""
    layer: str = ""
    purl: str = ""


@dataclass(frozen=True)
class Finding:
    package: Installed
    advisory: Advisory
    fixed: str  # "" when no fixed version is known

    @property
    def severity(self) -> str:
        return self.advisory.severity


def normalise(ecosystem: str, name: str) -> str:
    """PyPI names compare after PEP 503 normalisation; other ecosystems' names as they are."""
    return re.sub(r"[-_.]+", "-", name).lower() if ecosystem == "PyPI" else name


def _key(package: Installed, distro_id: str) -> tuple[str, str, str] | None:
    """(OSV ecosystem, name, version) to look the package up by."""
    if package.ecosystem == "Debian":
        ecosystem = "Ubuntu" if distro_id == "ubuntu" else "Debian"
        return ecosystem, package.source or package.name, package.source_version or package.version
    if package.ecosystem in ("PyPI", "npm", "Go"):
        return package.ecosystem, normalise(package.ecosystem, package.name), package.version
    return None


def _events(events: list[dict[str, Any]], order: versions.Key) -> list[tuple[Any, str, str]]:
    out: list[tuple[Any, str, str]] = []
    for event in events:
        for kind in ("introduced", "fixed", "last_affected"):
            if kind in event and isinstance(event[kind], str):
                text = event[kind]
                if kind == "introduced" and text == "0":
                    out.append(((0,), kind, text))
                elif (value := order(text)) is not None:
                    out.append(((1, value), kind, text))
    out.sort(key=lambda e: e[0])
    return out


def _simple(events: list[dict[str, Any]], version: str, order: versions.Key
            ) -> tuple[bool, str] | None:
    """Most OSV ranges are `introduced: 0` and one `fixed` or `last_affected`: one
    comparison answers them, no sorting (None: not that shape)."""
    if len(events) != 2 or events[0].get("introduced") != "0":
        return None
    end = events[1]
    if isinstance(fix := end.get("fixed"), str):
        below = versions.less(order, version, fix)
        return None if below is None else (below, fix)
    if isinstance(last := end.get("last_affected"), str):
        above = versions.less(order, last, version)
        return None if above is None else (not above, "")
    return None


def evaluate(entry: Affected, version: str) -> tuple[bool, str]:
    """(affected, fixed version) of `version` against one affected entry."""
    listed = version in entry.versions
    fixed = ""
    for r in entry.ranges:
        kind = r.get("type")
        order = versions.semantic if kind == "SEMVER" else (
            versions.ordering(entry.ecosystem) if kind == "ECOSYSTEM" else None)
        if order is None or (current := order(version)) is None:
            continue
        events = r.get("events") or []
        if (quick := _simple(events, version, order)) is not None:
            if quick[0]:
                return True, quick[1]
            continue
        here = (1, current)
        vulnerable, next_fix = False, ""
        for position, event, text in _events(events, order):
            if event == "introduced" and position <= here:
                vulnerable, next_fix = True, ""
            elif (event == "fixed" and position <= here
                  or event == "last_affected" and position < here):
                vulnerable = False
            elif event == "fixed" and vulnerable and not next_fix:
                next_fix = text
        if vulnerable:
            return True, next_fix
        if listed and not fixed:
            fixed = next_fix
    return listed, fixed


def match(packages: Iterable[Installed], db: AdvisoryDB, distro_id: str = "",
          distro_release: str = "") -> list[Finding]:
    """Every (package, advisory) pair where the advisory affects the installed version."""
    # (ecosystem, name) -> version -> the packages at it: a source's binaries share one
    # evaluation (util-linux builds eight of them)
    keyed: dict[tuple[str, str], dict[str, list[Installed]]] = {}
    for package in packages:
        if key := _key(package, distro_id):
            keyed.setdefault((key[0], key[1]), {}).setdefault(key[2], []).append(package)
    hits: dict[tuple[str, str, str], tuple[Installed, str, str]] = {}
    for entry in db.affecting(keyed):
        if entry.release and distro_release and entry.ecosystem in ("Debian", "Ubuntu") \
                and entry.release.partition(":")[0] != distro_release:
            continue
        for version, installed in keyed.get((entry.ecosystem, entry.name), {}).items():
            affected, fixed = evaluate(entry, version)
            for package in installed if affected else ():
                hits[(package.name, package.version, entry.advisory)] = (package, entry.advisory,
                                                                         fixed)
    advisories = db.advisories(advisory for _, advisory, _ in hits.values())
    findings = [Finding(p, advisories[a], f) for p, a, f in hits.values() if a in advisories]
    findings.sort(key=lambda f: (-severity.rank(f.severity), f.package.name, f.advisory.id))
    return findings


def select(findings: list[Finding], at_least: str = "", ignore_unfixed: bool = False
           ) -> list[Finding]:
    """The findings at or above a severity level, and with a fix when asked."""
    floor = severity.rank(at_least) if at_least else 0
    return [f for f in findings
            if severity.rank(f.severity) >= floor and (f.fixed or not ignore_unfixed)]
