"""Assemble an image from layers already in the store: config, manifest, record, tags.

Used by `image bootstrap` now and by the Dockerfile builder and `commit` later: whoever
made the layers says what the image runs (`config`), how each layer came to be (`history`)
and how the image was made (`annotations`); this module writes the OCI documents.
Callers hold `store.importing()` from the first layer write until this returns, so GC
never sweeps the fresh blobs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from portside.oci import mediatypes as mt
from portside.oci.model import canonical_json, host_platform
from portside.store.images import Image, ImageStore
from portside.store.layers import LayerResult

# Standard annotation keys (image-spec annotations.md, "Pre-Defined Annotation Keys").
CREATED = "org.opencontainers.image.created"
DESCRIPTION = "org.opencontainers.image.description"
TITLE = "org.opencontainers.image.title"
BASE_NAME = "org.opencontainers.image.base.name"


def rfc3339(ts: float | None = None) -> str:
    """A UTC timestamp as image configs write it (`2024-01-01T00:00:00Z`)."""
    moment = datetime.fromtimestamp(time.time() if ts is None else ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def build_config(
    layers: Sequence[LayerResult],
    config: dict[str, Any],
    history: Sequence[dict[str, Any]],
    created: str,
) -> dict[str, Any]:
    """The image config document (image-spec config.md) for `layers` on the host platform."""
    plat = host_platform()
    doc: dict[str, Any] = {
        "created": created,
        "architecture": plat.architecture,
        "os": plat.os,
        "config": dict(config),
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [dict({"created": created}, **h) for h in history],
    }
    if plat.variant:
        doc["variant"] = plat.variant
    return doc


def new_image(
    store: ImageStore,
    layers: Sequence[LayerResult],
    config: dict[str, Any],
    history: Sequence[dict[str, Any]] = (),
    annotations: dict[str, str] | None = None,
    tags: Iterable[str] = (),
    created: str | None = None,
) -> Image:
    """Write config and manifest for `layers` and record the image under `tags`.

    `config` is the runtime part (`Env`, `Cmd`, `Labels`...). `history` has one entry per
    layer plus any `empty_layer` entries; when shorter it is padded so every layer has one.
    `annotations` go on the manifest, with `org.opencontainers.image.created` filled in.
    """
    created = created or rfc3339()
    entries = [dict(h) for h in history]
    real = sum(1 for h in entries if not h.get("empty_layer"))
    entries += [{"created_by": "portside"} for _ in range(len(layers) - real)]
    config_bytes = canonical_json(build_config(layers, config, entries, created))
    config_digest = store.content.put(config_bytes)
    notes = {CREATED: created, **(annotations or {})}
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {
            "mediaType": mt.OCI_CONFIG,
            "digest": config_digest,
            "size": len(config_bytes),
        },
        "layers": [layer.descriptor() for layer in layers],
        "annotations": notes,
    }
    manifest_bytes = canonical_json(manifest)
    return store.add_image(manifest_bytes, tags)
