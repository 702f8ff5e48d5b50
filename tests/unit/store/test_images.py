from __future__ import annotations

import pytest
from helpers.imagefactory import add_image

from portside.errors import Conflict, ImageUnknown
from portside.store.images import ImageStore


def test_tag_resolve_and_remove(store: ImageStore) -> None:
    built = add_image(store, [{"etc/hello": b"hi"}], tags=("busybox",))
    assert store.get("busybox").id == built.image.id
    assert store.get("busybox:latest").id == built.image.id
    assert store.get(built.image.short_id).manifest_digest == built.image.manifest_digest
    store.tag("busybox", "myorg/base:1.0")
    assert store.get("myorg/base:1.0").id == built.image.id
    report = store.remove("myorg/base:1.0")
    assert report.untagged == ["myorg/base:1.0"] and not report.deleted
    report = store.remove("busybox")
    assert report.deleted == [built.image.id]
    with pytest.raises(ImageUnknown):
        store.get("busybox")
    assert list(store.content.digests()) == []


def test_image_in_use_is_kept(store: ImageStore) -> None:
    built = add_image(store, [{"a": b"1"}], tags=("app:1",))
    store.lease("container-1", built.image)
    with pytest.raises(Conflict):
        store.remove("app:1")
    store.remove("app:1", force=True)
    assert store.content.exists(built.image.config_digest)
    store.prune(all_unused=True)
    assert store.content.exists(built.image.config_digest)
    store.release("container-1")
    store.prune(all_unused=True)
    assert not store.content.exists(built.image.config_digest)


def test_prune_keeps_tagged_and_shared_blobs(store: ImageStore) -> None:
    shared = {"shared": b"base"}
    keep = add_image(store, [shared, {"x": b"1"}], tags=("keep",))
    add_image(store, [shared, {"y": b"2"}])  # dangling: no tag
    report = store.prune()
    assert len(report.deleted) == 1
    for blob in keep.layers:
        assert store.content.exists("sha256:" + __import__("hashlib").sha256(blob).hexdigest())
