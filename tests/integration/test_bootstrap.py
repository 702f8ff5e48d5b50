"""`portside image bootstrap`: base images from busybox-static and debootstrap, end to end."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portside.store.bootstrap import apt_mirror
from portside.store.images import ImageStore

PORTSIDE = str(Path(sys.executable).with_name("portside"))
IS_ROOT = os.geteuid() == 0


def portside(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([PORTSIDE, *args], capture_output=True, text=True, timeout=900)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def layer_members(store: ImageStore, name: str) -> tuple[dict[str, tarfile.TarInfo], bytes]:
    image = store.get(name)
    (layer,) = store.manifest(image).layers
    raw = gzip.decompress(store.content.read(layer.digest))
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        return {m.name: m for m in tar.getmembers()}, raw


def read_member(raw: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


def no_mounts_under(path: Path) -> bool:
    with open("/proc/self/mountinfo") as f:
        return not any(line.split()[4].startswith(str(path)) for line in f)


needs_busybox = pytest.mark.skipif(
    not Path("/bin/busybox").exists(), reason="busybox-static is not installed"
)


@needs_busybox
def test_bootstrap_busybox_then_images_lists_it(root: Path) -> None:
    out = portside("image", "bootstrap", "busybox").stdout
    assert "Tagged busybox:latest" in out
    image_id = out.split()[-1]
    assert image_id.startswith("sha256:")
    listing = portside("images").stdout.splitlines()
    assert listing[0].split()[:2] == ["REPOSITORY", "TAG"]
    row = next(line.split() for line in listing[1:] if line.startswith("busybox"))
    assert row[1] == "latest" and row[2] == image_id.removeprefix("sha256:")[:12]

    store = ImageStore(root)
    try:
        members, raw = layer_members(store, "busybox")
        assert members["bin/busybox"].isreg() and members["bin/busybox"].mode == 0o755
        assert members["bin/sh"].islnk() and members["bin/sh"].linkname == "bin/busybox"
        assert members["tmp"].isdir() and members["tmp"].mode == 0o1777
        assert read_member(raw, "etc/passwd").startswith(b"root:x:0:0:root:/root:/bin/sh\n")
        assert b"nobody:x:65534" in read_member(raw, "etc/passwd")
        assert read_member(raw, "etc/group").startswith(b"root:x:0:")
        image = store.get("busybox")
        config = store.config(image).config
        manifest = store.manifest(image)
        assert config["Cmd"] == ["sh"] and any(e.startswith("PATH=") for e in config["Env"])
        assert manifest.annotations["io.portside.bootstrap.kind"] == "busybox"
        assert "busybox-static" in manifest.annotations["org.opencontainers.image.description"]
        assert config["Labels"]["io.portside.bootstrap.kind"] == "busybox"
        assert 500_000 < image.size < 3_000_000
    finally:
        store.db.close()


@needs_busybox
def test_busybox_image_is_reproducible_and_takes_tags(root: Path) -> None:
    first = portside("image", "bootstrap", "busybox", "-q").stdout.strip()
    second = portside("image", "bootstrap", "busybox", "-t", "myorg/base:1.0", "-q").stdout.strip()
    assert first == second
    inspect = json.loads(portside("image", "inspect", "myorg/base:1.0").stdout)
    assert inspect[0]["Id"] == first


@needs_busybox
@pytest.mark.skipif(not IS_ROOT, reason="chroot needs root")
def test_busybox_layer_runs_a_shell(root: Path, tmp_path: Path) -> None:
    portside("image", "bootstrap", "busybox")
    store = ImageStore(root)
    try:
        (layer,) = store.manifest(store.get("busybox")).layers
        rootfs = tmp_path / "rootfs"
        rootfs.mkdir()
        subprocess.run(["tar", "-xzf", str(store.content.path(layer.digest)), "-C", str(rootfs)],
                       check=True)
    finally:
        store.db.close()
    out = subprocess.run(
        ["chroot", str(rootfs), "/bin/sh", "-c", "id -un; ls /usr/bin | grep -c ."],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    assert out[0] == "root" and int(out[1]) > 50


def test_missing_busybox_is_a_clear_error(root: Path) -> None:
    for binary in ("/nonexistent/busybox", "/bin/ls"):  # absent; dynamically linked
        result = portside("image", "bootstrap", "busybox", "--busybox", binary, check=False)
        assert result.returncode != 0
        assert "busybox-static is not installed" in result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "busybox" not in portside("images").stdout


needs_debootstrap = pytest.mark.skipif(
    not (IS_ROOT and shutil.which("debootstrap")), reason="debootstrap and root needed"
)


@needs_debootstrap
def test_missing_package_fails_fast_and_leaves_nothing(root: Path) -> None:
    result = portside(
        "image", "bootstrap", "debian", "--include", "no-such-package-xyz", check=False
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Error: debootstrap bookworm failed: Couldn't find these debs: no-such-package-xyz"
    )
    store = ImageStore(root)
    try:
        assert store.list() == [] and list(store.content.digests()) == []
    finally:
        store.db.close()
    assert list((root / "tmp").iterdir()) == []
    assert no_mounts_under(root)


@needs_debootstrap
def test_unknown_suite_is_a_clear_error(root: Path) -> None:
    result = portside("image", "bootstrap", "debian", "--suite", "no-such-suite", check=False)
    assert result.returncode == 1
    assert "debootstrap no-such-suite failed" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@needs_debootstrap
def test_bootstrap_debian_minbase_is_cached(root: Path) -> None:
    """About 35 s here (debootstrap minbase from the local mirror), then a cache hit."""
    first = portside("image", "bootstrap", "debian", "--suite", "bookworm", "-q").stdout.strip()
    again = portside("image", "bootstrap", "debian", "-t", "base:deb", "-q").stdout.strip()
    assert again == first
    assert "debian:bookworm" in json.loads(portside("image", "inspect", "base:deb").stdout)[0][
        "RepoTags"
    ]
    assert list((root / "tmp").iterdir()) == []
    assert no_mounts_under(root)
    store = ImageStore(root)
    try:
        members, raw = layer_members(store, "debian:bookworm")
        assert read_member(raw, "etc/debian_version").startswith(b"12")
        assert "usr/bin/apt-get" in members and "usr/bin/bash" in members
        assert not [n for n in members if n.startswith("dev/")]  # no device nodes
        assert not [n for n in members if n.endswith(".deb")]
        assert read_member(raw, "etc/resolv.conf") == b""
        notes = store.manifest(store.get("debian:bookworm")).annotations
        assert notes["io.portside.bootstrap.suite"] == "bookworm"
        assert notes["io.portside.bootstrap.variant"] == "minbase"
        assert notes["io.portside.bootstrap.cache-key"].startswith("sha256:")
        assert store.config(store.get("debian:bookworm")).config["Cmd"] == ["bash"]
    finally:
        store.db.close()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--mirror", "--foreign", "invalid mirror '--foreign'"),
        ("--mirror", "ftp.example/debian", "want an http(s):// or file:// URL"),
        ("--variant", "--print-debs", "invalid debootstrap variant"),
        ("--suite", "../etc", "invalid suite name"),
    ],
)
def test_option_like_or_malformed_input_is_refused(
    root: Path, option: str, value: str, message: str
) -> None:
    result = portside("image", "bootstrap", "debian", f"{option}={value}", check=False)
    assert result.returncode == 1 and message in result.stderr


# -- the mirror comes from this machine's apt sources --


def test_mirror_from_deb822_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n# comment\nURIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\n\n"
        "Types: deb deb-src\nURIs: http://mirror.example/debian/\nSuites: bookworm\n"
    )
    assert apt_mirror(tmp_path) == "http://mirror.example/debian"


def test_mirror_from_one_line_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb [signed-by=/usr/share/keyrings/x.gpg] http://ftp.example/debian bookworm main\n"
    )
    assert apt_mirror(tmp_path) == "http://ftp.example/debian"


def test_disabled_sources_and_no_sources_fall_back(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "x.sources").write_text(
        "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n"
    )
    assert apt_mirror(tmp_path) == "http://deb.debian.org/debian"


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=400))
def test_mirror_parser_never_crashes(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        etc = Path(d)
        (etc / "sources.list.d").mkdir()
        (etc / "sources.list").write_text(text)
        (etc / "sources.list.d" / "a.sources").write_text(text)
        mirror = apt_mirror(etc)
        assert mirror == "http://deb.debian.org/debian" or mirror in text
