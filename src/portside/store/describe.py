"""Images described the way Docker shows them: `image inspect` documents and history rows.

Shared by the CLI and the daemon's `/images/{name}/json` so both say the same thing.
"""

from __future__ import annotations

from typing import Any

from portside.oci import reference as refs
from portside.store.images import Image, ImageStore


def inspect(store: ImageStore, image: Image) -> dict[str, Any]:
    """Docker's image inspect shape, plus the OCI manifest and its annotations."""
    manifest = store.manifest(image)
    config = store.config(image)
    repo_digests = sorted(
        {f"{refs.parse(t).familiar_repository}@{image.index_digest or image.manifest_digest}"
         for t in image.tags}
    )
    return {
        "Id": image.id,
        "RepoTags": [refs.parse(t).familiar() for t in image.tags],
        "RepoDigests": repo_digests,
        "Created": config.created,
        "Author": config.raw.get("author", ""),
        "Architecture": config.raw.get("architecture", ""),
        "Variant": config.raw.get("variant", ""),
        "Os": config.raw.get("os", ""),
        "Size": image.size,
        "Config": config.config,
        "RootFS": {"Type": "layers", "Layers": config.diff_ids},
        "Descriptor": {
            "mediaType": image.media_type,
            "digest": image.manifest_digest,
            "size": store.content.size(image.manifest_digest),
        },
        "Manifest": manifest.to_json(),
        "Annotations": manifest.annotations,
        "Metadata": {"LastTagTime": image.added},
    }


def history(store: ImageStore, image: Image) -> list[dict[str, Any]]:
    """One row per history entry, newest first, each with the size of the layer it made."""
    manifest = store.manifest(image)
    config = store.config(image)
    layers = list(manifest.layers)
    rows: list[dict[str, Any]] = []
    entries = config.history or [{} for _ in layers]
    for entry in entries:
        size = 0
        if not entry.get("empty_layer") and layers:
            size = layers.pop(0).size
        rows.append(
            {
                "Created": entry.get("created", ""),
                "CreatedBy": entry.get("created_by", ""),
                "Size": size,
                "Comment": entry.get("comment", ""),
            }
        )
    rows.reverse()
    if rows:
        rows[0]["Id"] = image.id
    return rows
