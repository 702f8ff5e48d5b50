"""Image archives: `load` reads `docker save` archives and OCI image layouts, `save` writes them.

The two directions live in `archive_load` and `archive_save`; this module is their public
face. What both need (the archive error, compression sniffing, the streaming diff_id
hasher) lives in `archive_common`, below both, and is re-exported here.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, TYPE_CHECKING

from portside.errors import InvalidArgument
from portside.store.archive_common import DiffHasher, InvalidArchive, Progress, sniff

if TYPE_CHECKING:
    from portside.store.images import Image, ImageStore

__all__ = ["FORMATS", "DiffHasher", "InvalidArchive", "Progress", "load", "save", "sniff"]

FORMATS = ("oci", "docker")


def load(
    store: ImageStore,
    source: str | Path | IO[bytes],
    where: str | None = None,
    progress: Progress | None = None,
) -> list[Image]:
    """Import every image of an archive (tar, compressed tar, OCI layout dir, or a stream).

    Returns the images recorded, each with `tags` set to the names this archive gave it
    (full references, e.g. `docker.io/library/busybox:latest`). Raises InvalidArchive (or
    another PortsideError) with nothing recorded when the archive is bad. `where` names
    the source in messages (default: the path, or the stream's name).
    """
    from portside.store.archive_load import load_archive

    return load_archive(store, source, where, progress)


def save(
    store: ImageStore,
    names: list[str] | tuple[str, ...],
    out: str | Path | IO[bytes],
    format: str = "oci",
) -> None:
    """Write the named images to `out` (a path, written atomically, or a binary stream).

    `format` is `oci` (an OCI image layout tar, which podman and skopeo read as
    `oci-archive:`) or `docker` (a `docker save` archive with uncompressed layers).
    """
    from portside.store.archive_save import save_archive

    if format not in FORMATS:
        raise InvalidArgument(f"unknown archive format {format!r}: use one of {', '.join(FORMATS)}")
    save_archive(store, list(names), out, format)
