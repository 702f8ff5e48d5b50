"""An image's root filesystem as overlayfs lower directories: its layers' snapshots.

Above both `images` (which owns a `SnapshotStore`) and `snapshots` (which knows nothing of
images), so neither imports the other back.
"""

from __future__ import annotations

from pathlib import Path

from portside.oci.model import InvalidDocument
from portside.store.images import Image, ImageStore


def prepare_image(store: ImageStore, image: Image) -> list[Path]:
    """The snapshot directories of `image`'s layers, top-most first: overlayfs' `lowerdir=`
    order. Layers not unpacked yet are unpacked now. A layer that occurs more than once is
    listed once, at its top-most place (the lower occurrence can show nothing the upper one
    does not), since overlayfs may refuse the same directory twice.

    Holds the store's import lock while unpacking, so garbage collection never removes a
    snapshot being prepared; callers keep the image leased while they use the result.
    """
    manifest = store.manifest(image)
    diff_ids = store.config(image).diff_ids
    if len(diff_ids) != len(manifest.layers):
        raise InvalidDocument(
            image.manifest_digest,
            f"{len(manifest.layers)} layers but the config lists {len(diff_ids)} diff_ids",
        )
    paths: list[Path] = []
    with store.importing():
        for layer, diff_id in reversed(list(zip(manifest.layers, diff_ids, strict=True))):
            path = store.snapshots.prepare(layer, diff_id)
            if path not in paths:
                paths.append(path)
    return paths
