from __future__ import annotations

import hashlib
import multiprocessing
import os
from pathlib import Path

import pytest

from portside.errors import BlobUnknown, DigestMismatch, SizeMismatch
from portside.store.content import ContentStore


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_ingest_streams_and_verifies(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    data = os.urandom(3 * 1024 * 1024 + 17)
    digest = store.ingest(iter([data[:1000], data[1000:]]), digest_of(data), len(data))
    assert digest == digest_of(data)
    assert store.read(digest) == data
    assert store.size(digest) == len(data)
    assert list(store.digests()) == [digest]


def test_wrong_digest_never_becomes_visible(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    wanted = digest_of(b"expected")
    with pytest.raises(DigestMismatch):
        store.ingest([b"something else"], wanted)
    assert not store.exists(wanted)
    assert not store.exists(digest_of(b"something else"))
    assert list(store.ingest_dir.iterdir()) == []


def test_size_overflow_is_refused_early(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    with pytest.raises(SizeMismatch):
        store.ingest([b"x" * 10], size=5)
    assert list(store.digests()) == []


def test_missing_blob_is_a_clear_error(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    with pytest.raises(BlobUnknown, match="not found"):
        store.open(digest_of(b"nothing"))


def _write_same(root: str, data: bytes, n: int) -> None:
    store = ContentStore(Path(root))
    for _ in range(n):
        store.ingest([data[: len(data) // 2], data[len(data) // 2 :]], digest_of(data))


def test_concurrent_writers_of_one_blob(tmp_path: Path) -> None:
    data = os.urandom(256 * 1024)
    procs = [
        multiprocessing.Process(target=_write_same, args=(str(tmp_path), data, 20)) for _ in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    store = ContentStore(tmp_path)
    assert store.read(digest_of(data)) == data
    assert list(store.ingest_dir.iterdir()) == []
