"""`portside sbom`, `scan`, `scan db` and `where` end to end: on the Debian bootstrap image
and busybox, through the CLI, with real OSV records and a real daemon."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from portside.store.images import ImageStore

sys.path.insert(0, str(Path(__file__).parents[2]))
from helpers.busybox import busybox_image  # noqa: E402
from helpers.daemon import PortsideDaemon, stop_autostarted  # noqa: E402
from helpers.imagefactory import add_image  # noqa: E402

DATA = Path(__file__).parents[2] / "data" / "osv"
PORTSIDE = str(Path(sys.executable).with_name("portside"))

needs_debootstrap = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("debootstrap") is None,
    reason="the Debian bootstrap image needs root and debootstrap")


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PORTSIDE_ROOT": str(root)}
    return subprocess.run([PORTSIDE, *args], env=env, capture_output=True, text=True,
                          timeout=900, stdin=subprocess.DEVNULL)


def ok(root: Path, *args: str) -> str:
    r = run(root, *args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def one_line_error(r: subprocess.CompletedProcess[str], words: str) -> None:
    assert r.returncode != 0
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert words in r.stderr, r.stderr


@pytest.fixture(scope="module")
def debian_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One root with the Debian bootstrap image and the test advisories, for the module."""
    root = tmp_path_factory.mktemp("scan") / "root"
    ok(root, "image", "bootstrap", "debian", "--suite", "bookworm", "-q")
    yield root
    stop_autostarted(root.parent)


@needs_debootstrap
def test_sbom_of_the_debian_image_is_what_dpkg_says(debian_root: Path, tmp_path: Path) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    store = ImageStore(debian_root)
    image = store.get("debian:bookworm")
    (layer,) = store.manifest(image).layers
    with tarfile.open(fileobj=gzip.open(store.content.path(layer.digest))) as tar:
        status = tar.extractfile("var/lib/dpkg/status")
        assert status is not None
        (tmp_path / "admin").mkdir()
        (tmp_path / "admin" / "status").write_bytes(status.read())
    store.db.close()
    dpkg = subprocess.run(["dpkg-query", f"--admindir={tmp_path / 'admin'}", "-W",
                           "-f", "${Package} ${Version}\n"], capture_output=True, text=True,
                          check=True).stdout.split("\n")
    expected = {tuple(line.split(" ")) for line in dpkg if line}

    ok(debian_root, "sbom", "debian:bookworm", "--format", "spdx-json", "-o",
       str(tmp_path / "sbom.spdx.json"))
    document = parse_file(str(tmp_path / "sbom.spdx.json"))
    assert validate_full_spdx_document(document) == []
    got = {(p.name, p.version) for p in document.packages if p.spdx_id != "SPDXRef-Image"}
    assert got == expected
    assert ("libc6", next(v for n, v in expected if n == "libc6")) in got

    cdx = ok(debian_root, "sbom", "debian:bookworm", "--format", "cyclonedx-json")
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(cdx) is None
    components = json.loads(cdx)["components"]
    assert len(components) == len(expected)
    libc6 = next(c for c in components if c["name"] == "libc6")
    assert libc6["purl"].startswith("pkg:deb/debian/libc6@2.36")
    assert {"name": "portside:layer:digest", "value": layer.digest} in libc6["properties"]


def test_sbom_of_busybox_and_bad_input(root: Path, store: ImageStore) -> None:
    busybox_image(store)
    cdx = json.loads(ok(root, "sbom", "busybox", "--format", "cyclonedx-json"))
    (component,) = cdx["components"]
    version = subprocess.run(["/bin/busybox"], capture_output=True, text=True).stdout
    assert component["name"] == "busybox" and f"v{component['version']}" in version
    applets = next(p["value"] for p in component["properties"] if p["name"] == "portside:applets")
    assert {"sh", "ls", "wget"} <= set(applets.split())
    one_line_error(run(root, "sbom", "busybox", "--format", "xml"), "unknown SBOM format 'xml'")
    one_line_error(run(root, "sbom", "no-such-image:1"), "no-such-image")
    assert not list(root.glob("*.partial"))


@needs_debootstrap
def test_scan_the_debian_image(debian_root: Path, tmp_path: Path) -> None:
    archive = tmp_path / "osv-debian.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted((DATA / "debian").glob("*.json")):
            z.write(f, f.name)
        z.writestr("broken.json", "{ not json")
    out = ok(debian_root, "scan", "db", "import", str(archive), str(DATA / "pypi"))
    assert "imported 5 advisories" in out and "1 malformed skipped" in out
    status = json.loads(ok(debian_root, "scan", "db", "status", "--format", "json"))
    assert status["ecosystems"] == {"Debian": 4, "PyPI": 1}

    table = ok(debian_root, "scan", "debian:bookworm").splitlines()
    assert table[1].split() == ["PACKAGE", "INSTALLED", "FIXED", "ID", "SEVERITY"]
    rows = {tuple(line.split()) for line in table[2:]}
    assert ("zlib1g", "1:1.2.13.dfsg-1", "-", "DEBIAN-CVE-2023-45853", "CRITICAL") in rows
    assert any(r[0] == "libc6" and r[3] == "DEBIAN-CVE-2026-4438" for r in rows)
    assert not any(r[3] == "DSA-5514-1" for r in rows)  # fixed in deb12u3, we have later

    report = json.loads(ok(debian_root, "scan", "debian:bookworm", "--format", "json"))
    zlib = next(v for v in report["vulnerabilities"] if v["package"] == "zlib1g")
    assert zlib["source"] == "zlib" and zlib["score"] == 9.8 and zlib["path"] == \
        "/var/lib/dpkg/status"

    sarif = json.loads(ok(debian_root, "scan", "debian:bookworm", "--format", "sarif"))
    assert sarif["version"] == "2.1.0"
    (run_,) = sarif["runs"]
    rules = {r["id"]: r for r in run_["tool"]["driver"]["rules"]}
    assert rules["DEBIAN-CVE-2023-45853"]["properties"]["security-severity"] == "9.8"
    for result in run_["results"]:
        assert result["ruleId"] in rules and result["message"]["text"]
        assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]

    high = run(debian_root, "scan", "debian:bookworm", "--severity", "high", "--exit-code", "5")
    assert high.returncode == 5
    assert [line.split()[0] for line in high.stdout.splitlines()[2:]] == ["zlib1g"]
    fixed_only = run(debian_root, "scan", "debian:bookworm", "--ignore-unfixed",
                     "--exit-code", "5")
    assert fixed_only.returncode == 0 and "0 vulnerabilities" in fixed_only.stdout

    # a newer export with a fix for zlib: the same image now has a fixed version to go to
    newer = json.loads((DATA / "debian" / "DEBIAN-CVE-2023-45853.json").read_text())
    newer["modified"] = "2030-01-01T00:00:00Z"
    newer["affected"][0]["ranges"][0]["events"].append({"fixed": "1:1.2.13.dfsg-1+deb12u1"})
    (tmp_path / "newer").mkdir()
    (tmp_path / "newer" / "DEBIAN-CVE-2023-45853.json").write_text(json.dumps(newer))
    ok(debian_root, "scan", "db", "import", str(tmp_path / "newer"))
    again = run(debian_root, "scan", "debian:bookworm", "--ignore-unfixed", "--exit-code", "1")
    assert again.returncode == 1
    assert "1:1.2.13.dfsg-1+deb12u1" in again.stdout


def test_scan_bad_input(root: Path, store: ImageStore, tmp_path: Path) -> None:
    busybox_image(store)
    one_line_error(run(root, "scan", "busybox", "--format", "xml"), "unknown output format")
    one_line_error(run(root, "scan", "busybox", "--severity", "urgent"), "unknown severity")
    one_line_error(run(root, "scan", "nope:1"), "nope")
    one_line_error(run(root, "scan", "db", "import", "--ecosystem", "cobol", str(DATA)),
                   "unknown ecosystem 'cobol'")
    ok(root, "scan", "db", "import", str(DATA / "npm"))
    (tmp_path / "junk.zip").write_bytes(b"PK\x03\x04 junk")
    one_line_error(run(root, "scan", "db", "import", str(DATA / "pypi"), str(tmp_path / "junk.zip")),
                   "database unchanged")
    assert json.loads(ok(root, "scan", "db", "status", "--format", "json"))["ecosystems"] == \
        {"npm": 1}
    assert "0 vulnerabilities" in ok(root, "scan", "busybox")
    # a layer that is no tar: one line naming the layer, from every command that reads it
    add_image(store, [b"\x00not a tar at all" * 64], tags=("sn-broken:1",), compression="none")
    for command in (("scan", "sn-broken:1"), ("sbom", "sn-broken:1"),
                    ("image", "lint", "sn-broken:1")):
        one_line_error(run(root, *command), "cannot read it")


def _image_with_packages(store: ImageStore) -> str:
    """busybox's layer, then a layer recording Debian's zlib1g and lodash (for `where`)."""
    base = busybox_image(store)
    (layer,) = store.manifest(base).layers
    raw = gzip.decompress(store.content.read(layer.digest))
    status = ("Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\n"
              "Source: zlib\nVersion: 1:1.2.13.dfsg-1\n\n")
    add_image(store, [raw, {
        "etc/os-release": b'ID=debian\nVERSION_ID="12"\n',
        "var/lib/dpkg/status": status.encode(),
        "app/node_modules/lodash/package.json": b'{"name": "lodash", "version": "4.17.20"}',
    }], tags=("sn-shop/web:1",), config={"Cmd": ["sleep", "600"], "Env": ["PATH=/bin"]})
    return store.get("sn-shop/web:1").manifest_digest


def test_where_finds_running_containers(daemon: PortsideDaemon, store: ImageStore) -> None:
    digest = _image_with_packages(store)
    daemon.cli("scan", "db", "import", str(DATA / "debian"), str(DATA / "npm"))
    daemon.cli("run", "-d", "--name", "sn-web", "sn-shop/web:1")
    daemon.cli("run", "-d", "--name", "sn-plain", "busybox", "sleep", "600")

    # the daemon indexed the image as the container started, before anyone asked
    from portside.trust.vulns.index import PackageIndex

    index = PackageIndex(daemon.root)
    daemon.wait_for(lambda: index.get(digest) is not None, what="the package index")
    index.close()

    rows = json.loads(daemon.cli("where", "CVE-2023-45853", "--format", "json").stdout)
    assert [(r["name"], r["package"], r["digest"]) for r in rows] == [
        ("sn-web", "zlib1g", digest)]
    assert rows[0]["since"].startswith("20")
    rows = json.loads(daemon.cli("where", "GHSA-35jh-r3h4-6jhm", "--format", "json").stdout)
    assert [(r["name"], r["installed"], r["fixed"]) for r in rows] == [
        ("sn-web", "4.17.20", "4.17.21")]
    table = daemon.cli("where", "lodash").stdout
    assert "sn-web" in table and "4.17.21" in table and "sn-plain" not in table
    assert "sn-plain" in daemon.cli("where", "busybox").stdout

    daemon.cli("rm", "-f", "sn-web")
    assert "no running container is affected" in daemon.cli("where", "CVE-2023-45853").stdout
    missing = daemon.cli("where", "CVE-1999-0001", check=False)
    one_line_error(missing, "no advisory 'CVE-1999-0001'")


def test_build_gates_name_the_image_only_when_it_passes(root: Path, store: ImageStore,
                                                         tmp_path: Path) -> None:
    _image_with_packages(store)
    ok(root, "scan", "db", "import", str(DATA / "debian"))
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM sn-shop/web:1\nLABEL tier=web\n")
    r = run(root, "build", "-q", "--scan-fail-on", "high", "-t", "sn-shop/web:2", str(context))
    assert r.returncode == 1
    assert "zlib1g 1:1.2.13.dfsg-1: DEBIAN-CVE-2023-45853 (critical)" in r.stderr
    assert "not tagged" in r.stderr.splitlines()[-1]
    assert run(root, "image", "inspect", "sn-shop/web:2").returncode != 0
    # nothing in the database reaches critical once zlib's record is gone: the gate passes
    (tmp_path / "db").mkdir()
    shutil.copy(DATA / "debian" / "DEBIAN-CVE-2011-3374.json", tmp_path / "db")
    for leftover in root.glob("vulns.db*"):
        leftover.unlink()
    ok(root, "scan", "db", "import", str(tmp_path / "db"))
    ok(root, "build", "-q", "--scan-fail-on", "critical", "-t", "sn-shop/web:2", str(context))
    assert run(root, "image", "inspect", "sn-shop/web:2").returncode == 0

    # --check: a key copied in (and deleted in a later step) fails the lint gate
    (context / "id_rsa").write_bytes(b"-----BEGIN RSA PRIVATE KEY-----\nMIIB\n"
                                     b"-----END RSA PRIVATE KEY-----\n")
    (context / "Dockerfile").write_text("FROM sn-shop/web:1\nCOPY id_rsa /root/id_rsa\n")
    r = run(root, "build", "-q", "--check", "-t", "sn-shop/web:3", str(context))
    assert r.returncode == 1 and "PS100 critical" in r.stderr, r.stderr
    (context / "id_rsa").unlink()
    (context / "Dockerfile").write_text("FROM sn-shop/web:1\nLABEL tier=web\n")
    (context / "structure-tests.yaml").write_text(
        "schemaVersion: '2.0.0'\nfileExistenceTests:\n  - name: app\n    path: /app/nope\n")
    r = run(root, "build", "-q", "--check", "-t", "sn-shop/web:3", str(context))
    assert r.returncode == 1 and "/app/nope does not exist" in r.stderr, r.stderr
    (context / "structure-tests.yaml").write_text(
        "schemaVersion: '2.0.0'\nfileExistenceTests:\n  - name: app\n"
        "    path: /app/node_modules/lodash/package.json\n")
    ok(root, "build", "-q", "--check", "-t", "sn-shop/web:3", str(context))
    assert run(root, "image", "inspect", "sn-shop/web:3").returncode == 0
