"""`unpack(..., file_digests=)`: the sha256 taken while a file is written is the sha256 of
what ends up on disk, whatever the archive does to the path later (replaces it with another
file, a directory, a symlink or a hardlink). A build context's COPY keys rest on it."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import tarfile
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portside.errors import PortsideError
from portside.store.unpack import UnpackPolicy, unpack

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="unpacking layers needs root")

NAMES = ["a", "b", "d", "d/a", "d/b", "d/d/a"]
KINDS = [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE]
POLICY = UnpackPolicy(whiteouts=False, eof_ends_archive=True)


def _tar(members: list[tuple[str, bytes, str, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, target, data in members:
            info = tarfile.TarInfo(name)
            info.type, info.mode = kind, 0o644
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = target
            if kind == tarfile.REGTYPE:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return out.getvalue()


def _check(root: Path, digests: dict[bytes, str]) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            rel = os.fsencode(path.relative_to(root))
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                want = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
                assert digests.get(rel) == want, rel
            else:
                assert rel not in digests, rel  # a symlink has no content digest


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(KINDS),
                          st.sampled_from(NAMES), st.binary(max_size=64)),
                min_size=1, max_size=10))
def test_digests_are_those_of_the_files_left_on_disk(members: list) -> None:
    work = Path(tempfile.mkdtemp(prefix="bp-digests-"))
    try:
        digests: dict[bytes, str] = {}
        try:
            unpack(io.BytesIO(_tar(members)), work / "t", policy=POLICY, file_digests=digests)
        except PortsideError:
            return  # refused (a hardlink to nothing, a file where a directory must be)
        _check(work / "t", digests)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_a_replaced_file_and_its_hardlink(tmp_path: Path) -> None:
    members = [
        ("a", tarfile.REGTYPE, "", b"old"),
        ("b", tarfile.LNKTYPE, "a", b""),
        ("a", tarfile.REGTYPE, "", b"new"),  # a new inode: b keeps the old content
        ("d/a", tarfile.REGTYPE, "", b"x"),
        ("d/a", tarfile.SYMTYPE, "../a", b""),
    ]
    digests: dict[bytes, str] = {}
    unpack(io.BytesIO(_tar(members)), tmp_path / "t", policy=POLICY, file_digests=digests)
    sha = {k: "sha256:" + hashlib.sha256(k).hexdigest() for k in (b"old", b"new")}
    assert digests == {b"a": sha[b"new"], b"b": sha[b"old"]}
    _check(tmp_path / "t", digests)
