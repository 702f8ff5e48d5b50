"""A busybox image in a test store, from Debian's busybox-static (no registry needed)."""

from __future__ import annotations

from portside.store.bootstrap import bootstrap_busybox
from portside.store.images import Image, ImageStore


def busybox_image(store: ImageStore, tags: tuple[str, ...] = ("busybox:latest",)) -> Image:
    """Store busybox (static binary, applet links, root and nobody users) under `tags`."""
    return bootstrap_busybox(store, tags).image
