"""The pull-through cache: a local registry fed by an upstream one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from helpers.imagefactory import add_image, sha
from helpers.regserver import RunningRegistry, error_code, http

from portside.registry import transfer
from portside.registry.proxy import Proxy
from portside.store.images import ImageStore

MakeRegistry = Callable[..., RunningRegistry]


def test_pull_through_cache_fetches_once_and_serves_locally(
        make_registry: MakeRegistry, store: ImageStore, tmp_path: Path) -> None:
    upstream = make_registry("upstream")
    ref = f"{upstream.host}/library/app:1"
    built = add_image(store, [{"a": b"cached layer"}], tags=(ref,))
    asyncio.run(transfer.push(store, ref))
    cache = make_registry("cache", proxy=Proxy(upstream.url, allow=["library/*"]))
    other = ImageStore(tmp_path / "other")
    report = asyncio.run(transfer.pull(other, f"{cache.host}/library/app:1"))
    assert report.image is not None and report.image.manifest_digest == built.image.manifest_digest
    served = upstream.registry.stats["requests GET"]
    # a second client of the cache: blobs come from the cache, not from upstream again
    third = ImageStore(tmp_path / "third")
    asyncio.run(transfer.pull(third, f"{cache.host}/library/app:1"))
    blob_gets = upstream.registry.stats["requests GET"] - served
    assert blob_gets <= 1  # only the tag is looked up again
    assert cache.registry.storage.content.exists(sha(built.layers[0]))
    other.db.close()
    third.db.close()


def test_cache_refuses_pushes_and_repositories_not_allowed(
        make_registry: MakeRegistry, store: ImageStore) -> None:
    upstream = make_registry("upstream")
    ref = f"{upstream.host}/private/app:1"
    add_image(store, [{"a": b"secret"}], tags=(ref,))
    asyncio.run(transfer.push(store, ref))
    cache = make_registry("cache", proxy=Proxy(upstream.url, allow=["library/*"]))
    status, _, body = http(cache, "GET", "/v2/private/app/manifests/1")
    assert (status, error_code(body)) == (404, "MANIFEST_UNKNOWN")
    status, _, body = http(cache, "POST", "/v2/library/app/blobs/uploads/")
    assert (status, error_code(body)) == (405, "UNSUPPORTED")


def test_cache_answers_from_storage_when_upstream_is_gone(
        make_registry: MakeRegistry, store: ImageStore, tmp_path: Path) -> None:
    upstream = make_registry("upstream")
    ref = f"{upstream.host}/library/app:1"
    add_image(store, [{"a": b"x"}], tags=(ref,))
    asyncio.run(transfer.push(store, ref))
    cache = make_registry("cache", proxy=Proxy(upstream.url))
    warm = ImageStore(tmp_path / "warm")
    asyncio.run(transfer.pull(warm, f"{cache.host}/library/app:1"))
    warm.db.close()
    # point the cache at a port where nothing listens
    old = cache.registry.proxy
    assert old is not None
    asyncio.run_coroutine_threadsafe(old.close(), cache.loop).result(30)
    dead = Proxy("http://127.0.0.1:9")
    dead.storage = cache.registry.storage
    cache.registry.proxy = dead
    other = ImageStore(tmp_path / "cold")
    assert asyncio.run(transfer.pull(other, f"{cache.host}/library/app:1")).image is not None
    other.db.close()
