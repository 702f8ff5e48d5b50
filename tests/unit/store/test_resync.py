"""`resync`: unpacking archive B over what archive A left gives exactly the tree (names,
kinds, modes, owners, times, contents, link targets) and the digests that unpacking B into
an empty directory gives, whatever A held; a file kept is one whose content B repeats."""

from __future__ import annotations

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
from portside.store.resync import resync
from portside.store.unpack import UnpackPolicy, unpack

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="unpacking layers needs root")

NAMES = ["a", "b", "d", "d/a", "d/b", "e/f/g"]
KINDS = [tarfile.REGTYPE, tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE]
POLICY = UnpackPolicy(whiteouts=False, eof_ends_archive=True, allow_devices=False)

members = st.lists(
    st.tuples(st.sampled_from(NAMES), st.sampled_from(KINDS), st.sampled_from(NAMES),
              st.sampled_from([b"", b"x", b"y", b"xy"]), st.sampled_from([0o644, 0o600, 0o755]),
              st.sampled_from([0, 1000]), st.sampled_from([1_600_000_000, 1_700_000_000])),
    min_size=0, max_size=10)


def _tar(entries: list[tuple[Any, ...]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, target, data, mode, uid, mtime in entries:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, uid, mtime
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = target
            if kind == tarfile.REGTYPE:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return out.getvalue()


def _tree(root: Path, named: set[str]) -> dict[str, tuple[Any, ...]]:
    """The tree's every entry; a directory's time only when the archive names it (one
    made on the way to a file gets the time of the moment)."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(dirpath, name)
            s = os.lstat(path)
            what: Any = None
            if stat.S_ISREG(s.st_mode):
                what = path.read_bytes()
            elif stat.S_ISLNK(s.st_mode):
                what = os.readlink(path)
            rel = str(path.relative_to(root))
            mtime = s.st_mtime_ns if rel in named or not stat.S_ISDIR(s.st_mode) else None
            out[rel] = (stat.S_IFMT(s.st_mode), stat.S_IMODE(s.st_mode), s.st_uid, s.st_gid,
                        mtime, what)
    return out


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(members, members)
def test_b_over_a_is_b(first: list[Any], second: list[Any]) -> None:
    work = Path(tempfile.mkdtemp(prefix="bp-resync-"))
    try:
        previous: dict[bytes, str] = {}
        try:
            unpack(io.BytesIO(_tar(first)), work / "slot", policy=POLICY, file_digests=previous)
        except PortsideError:
            previous = {}
        want: dict[bytes, str] = {}
        try:
            unpack(io.BytesIO(_tar(second)), work / "fresh", policy=POLICY, file_digests=want)
        except PortsideError:
            with pytest.raises(PortsideError):
                resync(io.BytesIO(_tar(second)), work / "slot", previous, policy=POLICY,
                       file_digests={})
            assert not (work / "slot").exists()  # nothing half-made is kept
            return
        got: dict[bytes, str] = {}
        resync(io.BytesIO(_tar(second)), work / "slot", previous, policy=POLICY,
               file_digests=got)
        named = {m[0] for m in second}
        assert _tree(work / "slot", named) == _tree(work / "fresh", named)
        on_disk = {k: v for k, v in got.items() if (work / "slot" / os.fsdecode(k)).is_file()}
        assert on_disk == {k: v for k, v in want.items()
                           if (work / "fresh" / os.fsdecode(k)).is_file()}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_an_unchanged_file_is_kept_and_a_changed_one_rewritten(tmp_path: Path) -> None:
    a = [("d/same", tarfile.REGTYPE, "", b"keep", 0o644, 0, 1_600_000_000),
         ("d/changed", tarfile.REGTYPE, "", b"old!", 0o644, 0, 1_600_000_000),
         ("gone", tarfile.REGTYPE, "", b"x", 0o644, 0, 1_600_000_000)]
    b = [("d/same", tarfile.REGTYPE, "", b"keep", 0o600, 1000, 1_700_000_000),
         ("d/changed", tarfile.REGTYPE, "", b"new!", 0o644, 0, 1_600_000_000)]
    previous: dict[bytes, str] = {}
    unpack(io.BytesIO(_tar(a)), tmp_path / "slot", policy=POLICY, file_digests=previous)
    inode = os.stat(tmp_path / "slot" / "d" / "same").st_ino
    got: dict[bytes, str] = {}
    resync(io.BytesIO(_tar(b)), tmp_path / "slot", previous, policy=POLICY, file_digests=got)
    same = os.stat(tmp_path / "slot" / "d" / "same")
    assert same.st_ino == inode  # kept, not written again
    assert (stat.S_IMODE(same.st_mode), same.st_uid, same.st_mtime) == (0o600, 1000, 1_700_000_000)
    assert (tmp_path / "slot" / "d" / "changed").read_bytes() == b"new!"
    assert not (tmp_path / "slot" / "gone").exists()
    assert got == {b"d/same": "sha256:" + hashlib.sha256(b"keep").hexdigest(),
                   b"d/changed": "sha256:" + hashlib.sha256(b"new!").hexdigest()}
