"""Build small images in memory for tests: layers from dicts of files, straight into a store."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import zstandard

from portside.oci import mediatypes as mt
from portside.oci.model import canonical_json, host_platform
from portside.store.images import Image, ImageStore

# path -> content (bytes), or a TarInfo to add as is (links, dirs, devices, whiteouts).
Files = Mapping[str, "bytes | tarfile.TarInfo"]


def tar_bytes(files: Files) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, item in files.items():
            if isinstance(item, tarfile.TarInfo):
                tar.addfile(item)
                continue
            info = tarfile.TarInfo(name)
            info.size = len(item)
            info.mode = 0o644
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(item))
    return buf.getvalue()


def compress(data: bytes, compression: str) -> tuple[bytes, str]:
    if compression == "gzip":
        return gzip.compress(data, mtime=0), mt.OCI_LAYER_GZIP
    if compression == "zstd":
        return zstandard.ZstdCompressor().compress(data), mt.OCI_LAYER_ZSTD
    return data, mt.OCI_LAYER


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Built:
    image: Image
    manifest: bytes
    config: bytes
    layers: list[bytes]  # the blobs, as stored (compressed)


def add_image(
    store: ImageStore,
    layers: Sequence[Files | bytes],
    tags: tuple[str, ...] = (),
    compression: str = "gzip",
    config: dict[str, Any] | None = None,
) -> Built:
    """Store an image whose layers hold `layers` (dicts of files, or raw tar bytes)."""
    blobs, descriptors, diff_ids = [], [], []
    for layer in layers:
        raw = layer if isinstance(layer, bytes) else tar_bytes(layer)
        blob, media_type = compress(raw, compression)
        store.content.put(blob)
        blobs.append(blob)
        diff_ids.append(sha(raw))
        descriptors.append({"mediaType": media_type, "digest": sha(blob), "size": len(blob)})
    plat = host_platform()
    config_doc = {
        "architecture": plat.architecture,
        "os": plat.os,
        "created": "2024-01-01T00:00:00Z",
        "config": config or {"Cmd": ["sh"], "Env": ["PATH=/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": f"test layer {i}"} for i in range(len(diff_ids))],
    }
    config_bytes = canonical_json(config_doc)
    store.content.put(config_bytes)
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG, "digest": sha(config_bytes), "size": len(config_bytes)},
            "layers": descriptors,
        }
    )
    image = store.add_image(manifest, tags)
    return Built(image, manifest, config_bytes, blobs)


def config_json(built: Built) -> dict[str, Any]:
    return dict(json.loads(built.config))
