"""push/pull against the portside server: only missing blobs travel, indexes, resume."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from helpers.imagefactory import add_image, sha
from helpers.regserver import CuttingProxy, RunningRegistry, http

from portside.oci import mediatypes as mt
from portside.oci.model import canonical_json, host_platform
from portside.registry import transfer
from portside.store.images import ImageStore


def _store(tmp_path: Path, name: str) -> ImageStore:
    return ImageStore(tmp_path / name)


def test_push_then_pull_into_an_empty_store(reg: RunningRegistry, store: ImageStore,
                                            tmp_path: Path) -> None:
    ref = f"{reg.host}/team/app:1.0"
    built = add_image(store, [{"a": b"alpha"}, {"b": os.urandom(200_000)}], tags=(ref,))
    report = asyncio.run(transfer.push(store, ref))
    assert report.digest == built.image.manifest_digest
    assert len(report.sent) == 3
    other = _store(tmp_path, "other")
    pulled = asyncio.run(transfer.pull(other, ref))
    assert pulled.image is not None
    assert pulled.image.config_digest == built.image.config_digest
    assert other.get(ref).manifest_digest == built.image.manifest_digest
    assert all(other.content.read(sha(layer)) == layer for layer in built.layers)
    # pulled again: nothing comes back
    again = asyncio.run(transfer.pull(other, ref))
    assert again.sent == [] and len(again.skipped) == 3
    other.db.close()


def test_repush_sends_no_body_bytes(reg: RunningRegistry, store: ImageStore) -> None:
    ref = f"{reg.host}/team/app:1.0"
    add_image(store, [{"a": os.urandom(50_000)}, {"b": b"b"}], tags=(ref,))
    asyncio.run(transfer.push(store, ref))
    stats = reg.registry.stats
    bodies, body_bytes = stats["bodies"], stats["body_bytes"]
    report = asyncio.run(transfer.push(store, ref))
    assert report.sent == [] and len(report.skipped) == 3
    assert (stats["bodies"], stats["body_bytes"]) == (bodies, body_bytes)
    # a new name in another repository: blobs are mounted, not sent
    store.tag(ref, f"{reg.host}/elsewhere/app:2")
    report = asyncio.run(transfer.push(store, f"{reg.host}/elsewhere/app:2"))
    assert len(report.mounted) == 3 and report.sent == []
    assert (stats["bodies"], stats["body_bytes"]) == (bodies, body_bytes)
    assert http(reg, "GET", "/v2/elsewhere/app/manifests/2")[0] == 200


def test_pull_of_an_index_picks_the_host_platform(reg: RunningRegistry, store: ImageStore,
                                                  tmp_path: Path) -> None:
    ours = add_image(store, [{"f": b"host"}])
    foreign = add_image(store, [{"f": b"other"}],
                        config={"Cmd": ["sh"]})
    # make the second one another architecture
    config = json.loads(foreign.config)
    config["architecture"] = "s390x"
    config_bytes = canonical_json(config)
    store.content.put(config_bytes)
    manifest = json.loads(foreign.manifest)
    manifest["config"] = {"mediaType": mt.OCI_CONFIG, "digest": sha(config_bytes), "size": len(config_bytes)}
    foreign_manifest = canonical_json(manifest)
    store.add_image(foreign_manifest)
    repo = "multi/app"
    for built_manifest, tag in ((ours.manifest, "host"), (foreign_manifest, "s390x")):
        image = store.add_image(built_manifest, [f"{reg.host}/{repo}:{tag}"])
        asyncio.run(transfer.push(store, f"{reg.host}/{repo}:{tag}"))
        assert image.manifest_digest == sha(built_manifest)
    plat = host_platform()
    index = canonical_json({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
        {"mediaType": mt.OCI_MANIFEST, "digest": sha(foreign_manifest), "size": len(foreign_manifest),
         "platform": {"os": "linux", "architecture": "s390x"}},
        {"mediaType": mt.OCI_MANIFEST, "digest": sha(ours.manifest), "size": len(ours.manifest),
         "platform": {"os": plat.os, "architecture": plat.architecture, "variant": plat.variant}},
    ]})
    status, _, _ = http(reg, "PUT", f"/v2/{repo}/manifests/latest", index, {"Content-Type": mt.OCI_INDEX})
    assert status == 201
    other = _store(tmp_path, "other")
    report = asyncio.run(transfer.pull(other, f"{reg.host}/{repo}"))
    assert report.digest == sha(index)
    image = other.get(f"{reg.host}/{repo}:latest")
    assert image.manifest_digest == sha(ours.manifest)
    assert image.index_digest == sha(index)
    assert other.get(f"{reg.host}/{repo}@{sha(index)}").manifest_digest == sha(ours.manifest)
    other.db.close()


def test_pull_resumes_after_a_dropped_connection(reg: RunningRegistry, store: ImageStore,
                                                 tmp_path: Path) -> None:
    layer = os.urandom(4 << 20)
    ref = f"{reg.host}/big/app:1"
    add_image(store, [layer], tags=(ref,), compression="none")
    asyncio.run(transfer.push(store, ref))
    proxy = CuttingProxy(reg.port, cut_after=1 << 20, direction="down")
    try:
        other = _store(tmp_path, "other")
        via = f"127.0.0.1:{proxy.port}/big/app:1"
        report = asyncio.run(transfer.pull(other, via))
        assert report.image is not None and proxy.cuts == 1
        assert other.content.read(sha(layer)) == layer
        # resumed, not restarted: well under two copies of the layer came down
        assert proxy.bytes["down"] < len(layer) + (2 << 20)
        other.db.close()
    finally:
        proxy.close()


def test_push_resumes_after_a_dropped_connection(reg: RunningRegistry, store: ImageStore) -> None:
    layer = os.urandom(12 << 20)  # above the single-PUT size: a resumable PATCH upload
    proxy = CuttingProxy(reg.port, cut_after=5 << 20, direction="up")
    try:
        ref = f"127.0.0.1:{proxy.port}/big/app:1"
        add_image(store, [layer], tags=(ref,), compression="none")
        report = asyncio.run(transfer.push(store, ref))
        assert proxy.cuts == 1 and len(report.sent) == 2
        assert http(reg, "GET", f"/v2/big/app/blobs/{sha(layer)}")[2] == layer
        assert proxy.bytes["up"] < len(layer) + (6 << 20)
    finally:
        proxy.close()


def test_pull_of_a_missing_image_says_so(reg: RunningRegistry, store: ImageStore) -> None:
    from portside.registry.errors import RemoteError

    with pytest.raises(RemoteError, match="MANIFEST_UNKNOWN"):
        asyncio.run(transfer.pull(store, f"{reg.host}/nothing/here:1"))
    assert store.list() == []


def test_replicate_sends_only_missing_blobs(make_registry, store: ImageStore) -> None:  # type: ignore[no-untyped-def]
    src, dst = make_registry("src"), make_registry("dst")
    a = add_image(store, [{"x": b"shared"}, {"y": b"a only"}], tags=(f"{src.host}/team/a:1",))
    asyncio.run(transfer.push(store, f"{src.host}/team/a:1"))
    store.tag(f"{src.host}/team/a:1", f"{src.host}/team/a:2")
    asyncio.run(transfer.push(store, f"{src.host}/team/a:2"))
    result = asyncio.run(transfer.replicate(src.host, dst.host))
    assert len(result["team/a"].sent) == 3
    assert http(dst, "GET", "/v2/team/a/tags/list")[2] == b'{"name": "team/a", "tags": ["1", "2"]}'
    before = dst.registry.stats["body_bytes"]
    result = asyncio.run(transfer.replicate(src.host, dst.host, ["team/a"]))
    assert result["team/a"].sent == [] and dst.registry.stats["body_bytes"] == before
    assert http(dst, "GET", f"/v2/team/a/manifests/{a.image.manifest_digest}")[0] == 200
