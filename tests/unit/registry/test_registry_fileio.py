"""Downloads into the content store: verified before visible, nothing left on failure."""

from __future__ import annotations

import hashlib

import pytest

from portside.errors import DigestMismatch, SizeMismatch
from portside.registry.fileio import BlobSink
from portside.store.images import ImageStore


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_a_verified_download_is_published(store: ImageStore) -> None:
    data = b"x" * (9 << 20)  # past the writeback step
    with BlobSink(store.content, sha(data), len(data)) as sink:
        for i in range(0, len(data), 1 << 20):
            sink.write(data[i:i + (1 << 20)])
        sink.commit()
    assert store.content.read(sha(data)) == data
    assert list(store.content.ingest_dir.iterdir()) == []


@pytest.mark.parametrize("payload, announced", [(b"wrong", b"right"), (b"short", b"shorter")])
def test_a_bad_download_leaves_nothing(store: ImageStore, payload: bytes, announced: bytes) -> None:
    with pytest.raises((DigestMismatch, SizeMismatch)), \
            BlobSink(store.content, sha(announced), len(announced)) as sink:
        sink.write(payload)
        sink.commit()
    assert not store.content.exists(sha(announced)) and not store.content.exists(sha(payload))
    assert list(store.content.ingest_dir.iterdir()) == []
