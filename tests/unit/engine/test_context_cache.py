"""The daemon's kept contexts: the next context is unpacked over the last free one, two
builds at once never share a directory, a refused context leaves nothing, and prune (or a
new daemon) removes them."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from portside.engine.buildcontext import ContextCache, ContextError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="unpacking contexts needs root")


def _tar(files: dict[str, bytes]) -> io.BytesIO:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_600_000_000
            tar.addfile(info, io.BytesIO(data))
    out.seek(0)
    return out


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_the_next_context_goes_over_the_last_one(tmp_path: Path) -> None:
    cache = ContextCache(tmp_path / "contexts")
    with cache.checkout(_tar({"Dockerfile": b"FROM x\n", "a": b"1"})) as (first, digests):
        assert digests == {"Dockerfile": _sha(b"FROM x\n"), "a": _sha(b"1")}
        inode = os.stat(first / "Dockerfile").st_ino
    with cache.checkout(_tar({"Dockerfile": b"FROM x\n", "b": b"2"})) as (second, digests):
        assert second == first
        assert os.stat(second / "Dockerfile").st_ino == inode  # kept, not written again
        assert sorted(os.listdir(second)) == ["Dockerfile", "b"]
        assert digests == {"Dockerfile": _sha(b"FROM x\n"), "b": _sha(b"2")}


def test_builds_at_once_get_their_own_directories(tmp_path: Path) -> None:
    cache = ContextCache(tmp_path / "contexts", slots=2)
    with cache.checkout(_tar({"a": b"1"})) as (one, _), \
            cache.checkout(_tar({"a": b"2"})) as (two, _), \
            cache.checkout(_tar({"a": b"3"})) as (three, _):
        assert len({one, two, three}) == 3
        assert [(p / "a").read_bytes() for p in (one, two, three)] == [b"1", b"2", b"3"]
    assert not three.exists()  # beyond the two kept: removed after its build
    assert one.is_dir() and two.is_dir()
    cache.clear()
    assert not one.exists() and not two.exists()


def test_a_refused_context_leaves_nothing(tmp_path: Path) -> None:
    cache = ContextCache(tmp_path / "contexts")
    with cache.checkout(_tar({"a": b"1"})) as (kept, _):
        pass
    with pytest.raises(ContextError), cache.checkout(_tar({"../evil": b"x"})):
        pass
    assert not kept.exists()
    assert not (tmp_path / "evil").exists()
    with cache.checkout(_tar({"a": b"1"})) as (again, digests):  # and the cache goes on
        assert digests == {"a": _sha(b"1")}
        assert (again / "a").read_bytes() == b"1"


def test_a_new_cache_starts_empty(tmp_path: Path) -> None:
    with ContextCache(tmp_path / "contexts").checkout(_tar({"a": b"1"})) as (path, _):
        pass
    assert path.exists()
    ContextCache(tmp_path / "contexts")  # a restarted daemon: the digests are gone
    assert not path.exists()
