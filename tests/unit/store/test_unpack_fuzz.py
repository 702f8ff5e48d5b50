"""Random and mutated layers: unpacking either succeeds inside the target or raises a
PortsideError (leaving the target as it was); it never raises anything else and never
writes outside the target."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import stat
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portside.errors import PortsideError
from portside.oci import mediatypes as mt
from portside.store.unpack import UnpackPolicy, unpack

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="unpacking layers needs root")

# Names and link targets drawn from pieces that make trouble: dot-dot, absolute paths, the
# victim directory, whiteouts, repeated names that replace each other.
PIECES = ["a", "b", "..", ".", "", "outside", ".wh.a", ".wh..wh..opq", "link", "/", "//"]
KINDS = [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE,
         tarfile.CHRTYPE]

names = st.lists(st.sampled_from(PIECES), min_size=1, max_size=4).map("/".join)
entries = st.lists(
    st.tuples(names, st.sampled_from(KINDS), names, st.binary(max_size=700),
              st.sampled_from([0o644, 0o4755, 0o2755, 0o1777, 0])),
    min_size=1,
    max_size=8,
)
mutations = st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=6)


def build(items: list[tuple[str, bytes, str, bytes, int]], outside: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, link, data, mode in items:
            ti = tarfile.TarInfo(name)
            ti.type = kind
            ti.mode = mode
            ti.linkname = link.replace("outside", str(outside))
            if kind == tarfile.REGTYPE:
                ti.size = len(data)
                tar.addfile(ti, io.BytesIO(data))
            else:
                tar.addfile(ti)
    return buf.getvalue()


def state(top: Path) -> dict[str, tuple[Any, ...]]:
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirs, files in os.walk(top):
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            st_ = os.lstat(path)
            content = Path(path).read_bytes() if stat.S_ISREG(st_.st_mode) else None
            out[os.path.relpath(path, top)] = (st_.st_mode, st_.st_mtime_ns, st_.st_nlink, content)
    return out


def check(data: bytes, top: Path, media_type: str) -> None:
    outside = top / "outside"
    target = top / "target"
    before = state(outside)
    try:
        result = unpack(io.BytesIO(data), target, media_type=media_type,
                        policy=UnpackPolicy(max_bytes=1 << 20, max_entries=200))
    except PortsideError as exc:
        assert "\n" not in str(exc)
        assert not os.path.lexists(target)
    else:
        assert target.is_dir()
        assert result.tar_size <= 1 << 20
        # No inode is shared with the outside (a hardlink out would be one).
        outside_inodes = {os.lstat(os.path.join(d, n)).st_ino
                          for d, ds, fs in os.walk(outside) for n in ds + fs}
        for dirpath, dirs, files in os.walk(target):
            for name in dirs + files:
                assert os.lstat(os.path.join(dirpath, name)).st_ino not in outside_inodes
    assert state(outside) == before
    assert sorted(os.listdir(top)) in (["outside"], ["outside", "target"])


@pytest.fixture(scope="module")
def workdir() -> Any:
    top = Path(tempfile.mkdtemp(prefix="unpack-fuzz-"))
    yield top
    shutil.rmtree(top)


def fresh(top: Path) -> Path:
    for child in top.iterdir():
        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    (top / "outside").mkdir()
    (top / "outside/victim").write_bytes(b"precious")
    return top


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=entries, mutate=mutations, cut=st.none() | st.integers(0, 1 << 14), gz=st.booleans())
def test_random_layers(workdir: Path, items: Any, mutate: Any, cut: int | None, gz: bool) -> None:
    top = fresh(workdir)
    data = bytearray(build(items, top / "outside"))
    for offset, value in mutate:
        if data:
            data[offset % len(data)] = value
    if cut is not None:
        del data[cut:]
    blob = gzip.compress(bytes(data)) if gz else bytes(data)
    check(blob, top, mt.OCI_LAYER_GZIP if gz else mt.OCI_LAYER)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.binary(max_size=4096), media_type=st.sampled_from([mt.OCI_LAYER, mt.OCI_LAYER_GZIP, mt.OCI_LAYER_ZSTD]))
def test_random_bytes(workdir: Path, blob: bytes, media_type: str) -> None:
    check(blob, fresh(workdir), media_type)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.binary(min_size=512, max_size=512), fix_checksum=st.booleans(), body=st.binary(max_size=1500))
def test_random_headers_with_valid_checksums(workdir: Path, header: bytes, fix_checksum: bool,
                                             body: bytes) -> None:
    """Random header fields past the checksum: the field parsers themselves get exercised."""
    block = bytearray(header)
    if fix_checksum:
        block[148:156] = b"        "
        block[148:156] = b"%06o\0 " % (sum(block) & 0o777777)
    check(bytes(block) + body + bytes(1024), fresh(workdir), mt.OCI_LAYER)


def test_digest_of_what_was_read_is_the_diff_id(tmp_path: Path) -> None:
    data = build([("a", tarfile.REGTYPE, "", b"1", 0o644)], tmp_path)
    result = unpack(io.BytesIO(data), tmp_path / "t")
    assert result.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
