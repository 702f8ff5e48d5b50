"""The gates a build passes before its image gets its names: a vulnerability threshold
(`build --scan-fail-on`) and the bakery's checks (`build --check`: lint of the Dockerfile
and the image, and the context's structure tests). Each returns the report lines of what
failed; an empty list lets the build tag its image."""

from __future__ import annotations

from pathlib import Path

from portside.engine.interface import ContainersAPI
from portside.store.images import Image, ImageStore
from portside.trust.lint.dockerfile import lint_dockerfile
from portside.trust.lint.image import lint_image
from portside.trust.structure import spec as specs
from portside.trust.structure.run import run_tests
from portside.trust.vulns import severity
from portside.trust.vulns.db import AdvisoryDB
from portside.trust.vulns.index import PackageIndex
from portside.trust.vulns.match import match, select

STRUCTURE_TESTS = ("structure-tests.yaml", "structure-tests.yml")


def scan_gate(store: ImageStore, image: Image, at_least: str) -> list[str]:
    """The unfixed-or-not findings at or above `at_least`, one line each."""
    level = severity.level(at_least)
    indexed = PackageIndex(store.root).ensure(store, image)
    findings = select(match(indexed.packages, AdvisoryDB(store.root), indexed.distro,
                            indexed.release), level)
    return [f"{f.package.name} {f.package.version}: {f.advisory.id} ({f.severity}"
            f"{', fixed in ' + f.fixed if f.fixed else ''})" for f in findings]


def check_gate(store: ImageStore, image: Image, dockerfile: tuple[str, str], context: Path,
               containers: ContainersAPI | None, fail_on: str = "high") -> list[str]:
    """Lint findings at or above `fail_on`, and failed structure tests of the context."""
    floor = severity.rank(severity.level(fail_on))
    text, name = dockerfile
    findings = [*lint_dockerfile(text, name), *lint_image(store, image)]
    lines = [f"{f.rule} {f.severity} {f.where}: {f.message}" for f in findings
             if severity.rank(f.severity) >= floor]
    for filename in STRUCTURE_TESTS:
        path = context / filename
        if path.is_file():
            spec = specs.load(path.read_text(), str(path))
            for result in run_tests(spec, store, image, image.config_digest, containers):
                lines += [f"test {result.kind}: {result.name}: {e}" for e in result.errors]
    return lines
