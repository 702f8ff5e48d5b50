"""Where the engine's space goes (`docker system df`) and giving back the build cache's.

Figures are measured, not estimated: an image's `Size` is the bytes of its blobs (what
`images` shows), `SharedSize` the part of it in layers other images use too; a container's
`SizeRw` is its rw layer on disk; a volume's `UsageData` its content and how many
containers mount it; the build cache lists the cached steps with the layers only they keep.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from portside.engine.volumes import tree_size

if TYPE_CHECKING:
    from portside.engine.containers import Engine
    from portside.engine.state import Container
    from portside.store.images import Image


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def images_usage(engine: Engine, image_summary: Callable[[Image], dict[str, Any]]
                 ) -> tuple[list[dict[str, Any]], int]:
    """Image summaries (Docker's shape, by `image_summary`) with SharedSize filled in; and
    the total size of the layers."""
    with engine.image_lock:
        images = engine.images.list()
        layers: dict[str, list[tuple[str, int]]] = {}
        for image in images:
            manifest = engine.images.manifest(image)
            layers[image.id] = [(d.digest, d.size) for d in manifest.layers]
        summaries = [image_summary(i) for i in images]
    users = Counter(digest for ls in layers.values() for digest in {d for d, _ in ls})
    unique = {d: size for ls in layers.values() for d, size in ls}
    for summary, image in zip(summaries, images, strict=True):
        summary["SharedSize"] = sum(size for d, size in layers[image.id] if users[d] > 1)
    return summaries, sum(unique.values())


def container_sizes(engine: Engine, c: Container, image_sizes: dict[str, int] | None = None
                    ) -> dict[str, int]:
    """Docker's SizeRw (the rw layer) and SizeRootFs (that plus the image)."""
    if image_sizes is None:
        with engine.image_lock:
            image_sizes = {i.id: i.size for i in engine.images.list()}
    rw = tree_size(engine.rw_dir(c.id) / "diff")
    return {"SizeRw": rw, "SizeRootFs": rw + image_sizes.get(c.image_id, 0)}


def containers_usage(engine: Engine) -> list[dict[str, Any]]:
    from portside.engine import query

    with engine.image_lock:
        sizes = {i.id: i.size for i in engine.images.list()}
    out = []
    for c in engine.state.all():
        doc = query.summary(c, engine.networks.ports(c))
        doc.update(container_sizes(engine, c, sizes))
        out.append(doc)
    return out


def volumes_usage(engine: Engine) -> list[dict[str, Any]]:
    out = []
    for v in engine.volumes.list():
        v["UsageData"] = {"Size": engine.volumes.size(v["Name"]),
                          "RefCount": len(engine.volume_users(v["Name"]))}
        out.append(v)
    return out


def build_cache_usage(engine: Engine) -> list[dict[str, Any]]:
    """The cached build steps as Docker's BuildCache records (a layer's size counts where
    no image uses that layer: that is what pruning the cache gives back)."""
    from portside.build.cache import cached_steps

    in_images: set[str] = set()
    with engine.image_lock:
        for image in engine.images.list():
            in_images.update(d.digest for d in engine.images.manifest(image).layers)
    out = []
    for step in cached_steps(engine.root):
        layer = (step["result"] or {}).get("layer") or {}
        digest = layer.get("digest") or ""
        out.append({"ID": step["key"][:25], "Parent": "", "Parents": None, "Type": "regular",
                    "Description": f"layer {digest}" if digest else "config step",
                    "InUse": False, "Shared": digest in in_images,
                    "Size": int(layer.get("size") or 0), "CreatedAt": _stamp(step["created"]),
                    "LastUsedAt": _stamp(step["used"]), "UsageCount": 1})
    return out


def system_df(engine: Engine, image_summary: Callable[[Image], dict[str, Any]],
              kinds: set[str] | None = None) -> dict[str, Any]:
    """GET /system/df: `kinds` from `type=` (container, image, volume, build-cache)."""
    def wanted(kind: str) -> bool:
        return not kinds or kind in kinds

    doc: dict[str, Any] = {}
    if wanted("image"):
        doc["Images"], doc["LayersSize"] = images_usage(engine, image_summary)
        # portside's own: the unpacked layers (overlay lower dirs) on disk
        with engine.image_lock:
            doc["SnapshotsSize"] = engine.images.snapshots.total_size()
    if wanted("container"):
        doc["Containers"] = containers_usage(engine)
    if wanted("volume"):
        doc["Volumes"] = volumes_usage(engine)
    if wanted("build-cache"):
        doc["BuildCache"] = build_cache_usage(engine)
    return doc
