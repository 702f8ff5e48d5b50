"""What a build does with registries: pull bases, push results, reuse a pushed cache.

The inline cache works as BuildKit's `--cache-to type=inline`: every image the builder
writes carries, in a manifest annotation, the cache key of each step that made it and which
layer each produced. `--cache-from <image>` pulls that image and records those steps in the
local cache, so a build on another machine reuses the pushed layers instead of re-running
the steps. Keys depend only on a step's inputs (never on when or where it ran), so they
match across machines.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from portside.errors import PortsideError

if TYPE_CHECKING:
    from portside.build.cache import BuildCache
    from portside.build.output import Progress
    from portside.store.images import Image, ImageStore

CACHE_ANNOTATION = "io.portside.build.cache.v0"


class RemoteFailed(PortsideError):
    """A pull or push the build needed did not succeed."""


def pull(store: ImageStore, reference: str, progress: Progress) -> Image:
    import asyncio

    from portside.registry import transfer

    try:
        report = asyncio.run(transfer.pull(store, reference))
    except PortsideError as exc:
        raise RemoteFailed(f"pulling {reference}: {exc}") from None
    assert report.image is not None
    fetched = len(report.sent)
    progress.note(f"pulled {reference} ({fetched} blob{'s' if fetched != 1 else ''} fetched)")
    return report.image


def push(store: ImageStore, reference: str, progress: Progress) -> str:
    import asyncio

    from portside.registry import transfer

    try:
        report = asyncio.run(transfer.push(store, reference))
    except PortsideError as exc:
        raise RemoteFailed(f"pushing {reference}: {exc}") from None
    progress.note(f"pushed {reference}: digest: {report.digest}")
    return str(report.digest)


def cache_annotation(steps: list[dict[str, Any]]) -> str:
    """The inline cache of an image: one record per step (key, time, index of its layer)."""
    return json.dumps([[s["key"], s["created"], s["layer"]] for s in steps], separators=(",", ":"))


def import_cache(store: ImageStore, cache: BuildCache, reference: str, progress: Progress) -> int:
    """Pull `reference` and record the steps its inline cache names; returns how many."""
    from portside.errors import ImageUnknown

    try:
        image = store.get(reference)
    except (ImageUnknown, PortsideError):
        image = pull(store, reference, progress)
    manifest = store.manifest(image)
    diff_ids = store.config(image).diff_ids
    try:
        records = json.loads(manifest.annotations.get(CACHE_ANNOTATION, "[]"))
    except ValueError:
        records = []
    count = 0
    for record in records if isinstance(records, list) else []:
        if not (isinstance(record, list) and len(record) == 3):
            continue
        key, created, index = record
        layer = None
        if isinstance(index, int) and 0 <= index < len(manifest.layers):
            desc = manifest.layers[index]
            layer = {
                "digest": desc.digest,
                "size": desc.size,
                "diff_id": diff_ids[index],
                "media_type": desc.media_type,
            }
        elif index is not None:
            continue
        if isinstance(key, str) and isinstance(created, (int, float)):
            cache.store(key, {"created": created, "layer": layer})
            count += 1
    progress.note(f"cache from {reference}: {count} step{'s' if count != 1 else ''}")
    return count
