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


def test_a_collection_that_must_not_wait_skips_while_an_import_runs(store: ImageStore) -> None:
    """The daemon collects while holding its image lock, which an import under way needs:
    with wait=False the sweep is skipped then (0), never waited for; a later one sweeps."""
    import threading
    import time

    gone = add_image(store, [{"g": b"gone"}], tags=("gone:1",))
    store.db.execute("DELETE FROM tags")
    store.db.execute("DELETE FROM images")
    with store.importing():
        started = time.monotonic()
        assert store.collect_garbage(wait=False) == 0
        assert time.monotonic() - started < 1
        assert store.content.exists(gone.image.config_digest)
        waited: list[int] = []
        sweeper = threading.Thread(target=lambda: waited.append(store.collect_garbage()))
        sweeper.start()
        time.sleep(0.2)
        assert waited == []  # the default still waits for the import
    sweeper.join(5)
    assert waited and waited[0] > 0
    assert not store.content.exists(gone.image.config_digest)
