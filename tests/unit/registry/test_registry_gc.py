"""Garbage collection and retention, run beside a serving registry."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path

import pytest
from helpers.imagefactory import Built, add_image, sha
from helpers.regserver import RunningRegistry, http

from portside.errors import InvalidArgument
from portside.registry import gc, transfer
from portside.store.images import ImageStore


def age(reg: RunningRegistry, digest: str, seconds: float = 7200) -> None:
    """Make a blob (file and links) look pushed `seconds` ago."""
    storage = reg.registry.storage
    then = time.time() - seconds
    path = storage.content.path(digest)
    os.utime(path, (then, then))
    storage.db.execute("UPDATE blob_links SET linked = ? WHERE digest = ?", (then, digest))


def push(reg: RunningRegistry, store: ImageStore, tag: str, payload: bytes) -> Built:
    ref = f"{reg.host}/team/app:{tag}"
    built = add_image(store, [{"f": payload}], tags=(ref,))
    asyncio.run(transfer.push(store, ref))
    for blob in (*built.layers, built.config):
        age(reg, sha(blob))
    return built


def root(reg: RunningRegistry) -> Path:
    return reg.registry.storage.root


def test_unreferenced_blobs_are_swept_referenced_kept(reg: RunningRegistry, store: ImageStore) -> None:
    keep = push(reg, store, "keep", b"kept layer")
    drop = push(reg, store, "drop", b"dropped layer")
    assert http(reg, "DELETE", f"/v2/team/app/manifests/{drop.image.manifest_digest}")[0] == 202
    dry = gc.collect(root(reg), dry_run=True)
    assert set(dry.blobs) == {sha(drop.layers[0]), sha(drop.config)}
    assert reg.registry.storage.content.exists(sha(drop.layers[0]))  # dry run: nothing removed
    report = gc.collect(root(reg))
    assert set(report.blobs) == set(dry.blobs) and report.bytes > 0
    assert not reg.registry.storage.content.exists(sha(drop.layers[0]))
    assert http(reg, "HEAD", f"/v2/team/app/blobs/{sha(drop.layers[0])}")[0] == 404
    for blob in (*keep.layers, keep.config):
        assert http(reg, "GET", f"/v2/team/app/blobs/{sha(blob)}")[2] == blob
    assert http(reg, "GET", "/v2/team/app/manifests/keep")[0] == 200


def test_fresh_blobs_and_uploads_in_progress_survive(reg: RunningRegistry) -> None:
    data = b"layer pushed before its manifest"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert http(reg, "POST", f"/v2/a/blobs/uploads/?digest={digest}", data)[0] == 201
    _, headers, _ = http(reg, "POST", "/v2/a/blobs/uploads/")
    loc = headers["Location"]
    assert http(reg, "PATCH", loc, b"half of ", {"Content-Range": "0-7"})[0] == 202
    report = gc.collect(root(reg), grace=3600)
    assert report.blobs == [] and report.uploads == []
    assert http(reg, "HEAD", f"/v2/a/blobs/{digest}")[0] == 200
    # the upload goes on after GC, and completes
    assert http(reg, "PATCH", loc, b"a layer", {"Content-Range": "8-14"})[0] == 202
    whole = "sha256:" + hashlib.sha256(b"half of a layer").hexdigest()
    assert http(reg, "PUT", f"{loc}?digest={whole}")[0] == 201
    # once old and still unreferenced, the early blob goes
    age(reg, digest)
    assert digest in gc.collect(root(reg), grace=3600).blobs


def test_retention_keeps_the_newest_matching_tags(reg: RunningRegistry, store: ImageStore) -> None:
    builds = {}
    for i, tag in enumerate(["v1", "v2", "v3", "stable"]):
        builds[tag] = push(reg, store, tag, f"layer {i}".encode())
        time.sleep(0.01)  # distinct push times, newest last
    report = gc.collect(root(reg), keep_last=1, tag_pattern=r"v\d+")
    assert sorted(report.tags) == ["team/app:v1", "team/app:v2"]
    assert http(reg, "GET", "/v2/team/app/tags/list")[2] == b'{"name": "team/app", "tags": ["stable", "v3"]}'
    assert sha(builds["v1"].layers[0]) in report.blobs
    assert http(reg, "GET", f"/v2/team/app/manifests/{builds['v1'].image.manifest_digest}")[0] == 404
    assert http(reg, "GET", "/v2/team/app/manifests/stable")[0] == 200


def test_untagged_manifests_only_on_request(reg: RunningRegistry, store: ImageStore) -> None:
    built = push(reg, store, "t", b"x")
    http(reg, "DELETE", "/v2/team/app/manifests/t")  # the tag only
    assert gc.collect(root(reg)).blobs == []
    assert http(reg, "GET", f"/v2/team/app/manifests/{built.image.manifest_digest}")[0] == 200
    report = gc.collect(root(reg), delete_untagged=True)
    assert report.manifests == [f"team/app@{built.image.manifest_digest}"]
    assert sha(built.layers[0]) in report.blobs


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="not a registry root"):
        gc.collect(tmp_path)
    with pytest.raises(InvalidArgument, match="tag-pattern"):
        gc.collect(tmp_path, tag_pattern="(")


def test_gc_beside_concurrent_pushes(reg: RunningRegistry, store: ImageStore, tmp_path: Path) -> None:
    import threading

    garbage = []
    for i in range(5):
        data = f"garbage {i}".encode()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        assert http(reg, "POST", f"/v2/old/blobs/uploads/?digest={digest}", data)[0] == 201
        age(reg, digest)
        garbage.append(digest)
    refs = []
    for i in range(6):
        ref = f"{reg.host}/team/app:{i}"
        add_image(store, [{"f": os.urandom(20_000)}, {"g": f"{i}".encode()}], tags=(ref,))
        refs.append(ref)
    errors: list[BaseException] = []

    def pushes() -> None:
        try:
            for ref in refs:
                asyncio.run(transfer.push(store, ref))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    pusher = threading.Thread(target=pushes)
    pusher.start()
    swept: set[str] = set()
    while pusher.is_alive():
        swept.update(gc.collect(root(reg)).blobs)
    pusher.join()
    swept.update(gc.collect(root(reg)).blobs)
    assert errors == []
    assert swept == set(garbage)
    other = ImageStore(tmp_path / "other")
    for ref in refs:
        assert asyncio.run(transfer.pull(other, ref)).image is not None
    other.db.close()
