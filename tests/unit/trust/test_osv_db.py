"""The OSV advisory database: imports of directories and osv.dev-style zips, malformed
records skipped and counted, a failed import changing nothing, newer records replacing."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portside.errors import InvalidArgument, NotFound
from portside.trust.vulns import severity
from portside.trust.vulns.db import AdvisoryDB, ImportFailed, UnknownEcosystem, ecosystem_name
from portside.trust.vulns.match import Installed, match

DATA = Path(__file__).parents[2] / "data" / "osv"


def osv_zip(path: Path, *dirs: Path, extra: dict[str, bytes] | None = None) -> Path:
    """A zip laid out as osv.dev's per-ecosystem exports (flat `<ID>.json` members)."""
    with zipfile.ZipFile(path, "w") as z:
        for d in dirs:
            for f in sorted(d.glob("*.json")):
                z.write(f, f.name)
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return path


def test_import_directories_and_zips(tmp_path: Path) -> None:
    db = AdvisoryDB(tmp_path)
    archive = osv_zip(tmp_path / "osv-pypi.zip", DATA / "pypi")
    report = db.import_sources([DATA / "debian", archive, DATA / "npm"])
    assert (report.stored, report.skipped) == (6, 0)
    status = db.status()
    assert status["advisories"] == 6
    assert status["ecosystems"] == {"Debian": 4, "PyPI": 1, "npm": 1}
    assert [i["source"] for i in status["imports"]][0] == str(DATA / "npm")
    assert db.resolve("CVE-2024-35195") == ["GHSA-9wx4-h78v-vm56"]  # an alias
    assert db.resolve("CVE-2023-4911") == ["DSA-5514-1"]  # a CVE the DSA fixes
    with pytest.raises(NotFound):
        db.resolve("CVE-1999-0001")


def test_malformed_records_are_skipped_and_counted(tmp_path: Path) -> None:
    bad = {
        "not-json.json": b"{ this is not json",
        "no-id.json": json.dumps({"modified": "2024-01-01T00:00:00Z"}).encode(),
        "list.json": b"[1, 2]",
        "bad-range.json": json.dumps({"id": "X-1", "modified": "2024-01-01T00:00:00Z",
                                      "affected": [{"package": {"ecosystem": "PyPI",
                                                                "name": "a"},
                                                    "ranges": [{"events": "nope"}]}]}).encode(),
    }
    archive = osv_zip(tmp_path / "all.zip", DATA / "debian", extra=bad)
    db = AdvisoryDB(tmp_path / "root")
    report = db.import_sources([archive])
    assert (report.stored, report.skipped) == (4, 4)
    assert any("not-json.json" in p for p in report.problems)
    assert db.status()["imports"][0]["skipped"] == 4


def test_a_failed_import_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    db = AdvisoryDB(tmp_path / "root")
    db.import_sources([DATA / "debian"])
    before = db.status()
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 truncated, not a zip")
    with pytest.raises(ImportFailed):
        db.import_sources([DATA / "pypi", broken])  # pypi was read first, then rolled back
    with pytest.raises(ImportFailed, match="no such file"):
        db.import_sources([DATA / "npm", tmp_path / "missing"])
    assert db.status() == before


def test_newer_records_replace_older_ones_and_rescans_see_them(tmp_path: Path) -> None:
    db = AdvisoryDB(tmp_path / "root")
    db.import_sources([DATA / "pypi"])
    requests = Installed("PyPI", "requests", "2.32.0", path="x/METADATA")
    assert match([requests], db) == []
    newer = json.loads((DATA / "pypi" / "GHSA-9wx4-h78v-vm56.json").read_text())
    newer["modified"] = "2030-01-01T00:00:00Z"
    newer["affected"][0]["ranges"][0]["events"][1]["fixed"] = "2.33.0"
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "GHSA-9wx4-h78v-vm56.json").write_text(json.dumps(newer))
    assert db.import_sources([tmp_path / "new"]).stored == 1
    (found,) = match([requests], db)
    assert found.fixed == "2.33.0" and found.severity == "medium"
    # an older copy does not undo it
    assert db.import_sources([DATA / "pypi"]).unchanged == 1
    assert match([requests], db)[0].fixed == "2.33.0"


def test_debian_matches_by_source_and_release(tmp_path: Path) -> None:
    db = AdvisoryDB(tmp_path / "root")
    db.import_sources([DATA / "debian"])
    libc = Installed("Debian", "libc6", "2.36-9+deb12u2", "glibc", "2.36-9+deb12u2")
    ids = {f.advisory.id for f in match([libc], db, "debian", "12")}
    assert ids == {"DSA-5514-1", "DEBIAN-CVE-2026-4438"}
    current = Installed("Debian", "libc6", "2.36-9+deb12u14", "glibc", "2.36-9+deb12u14")
    assert {f.advisory.id for f in match([current], db, "debian", "12")} == {
        "DEBIAN-CVE-2026-4438"}
    # Debian 13's glibc is not judged by bookworm's records
    assert match([current], db, "debian", "13") == []


def test_ecosystem_names_and_severity_words() -> None:
    assert ecosystem_name("pypi") == "PyPI"
    with pytest.raises(UnknownEcosystem, match="unknown ecosystem 'cobol'"):
        ecosystem_name("cobol")
    assert severity.level("HIGH") == "high" and severity.level("moderate") == "medium"
    with pytest.raises(InvalidArgument):
        severity.level("urgent")
    record = {"severity": [{"type": "CVSS_V3",
                            "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]}
    assert severity.of_record(record) == ("critical", 9.8)
    assert severity.of_record({"database_specific": {"severity": "LOW"}}) == ("low", 0.0)
    assert severity.of_record({"severity": [{"type": "CVSS_V3", "score": "garbage"}]})[0] == \
        "unknown"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda kids: st.lists(kids, max_size=3)
                    | st.dictionaries(st.sampled_from(["id", "modified", "affected", "package",
                                                       "ranges", "events", "ecosystem", "name",
                                                       "versions", "severity", "aliases"]),
                                      kids, max_size=4), max_leaves=12))
def test_any_json_is_imported_or_skipped_never_fatal(tmp_path: Path, doc: object) -> None:
    where = tmp_path / "fuzz"
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir()
    (where / "r.json").write_text(json.dumps(doc))
    db = AdvisoryDB(where / "root")
    report = db.import_sources([where / "r.json"])
    assert report.stored + report.skipped == 1
    db.close()
