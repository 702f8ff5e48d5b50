"""`load`: import `docker save` archives and OCI image layouts (tar, compressed tar, or dir).

`archive_collect` makes one pass over the archive, streaming blobs into the content store.
Then the metadata (`index.json`, else `manifest.json`) is resolved against what arrived,
every digest and size is checked, and only when every image is whole are the images
recorded, all under `store.importing()` so GC cannot sweep the fresh blobs. Blobs written
by a failed (or partly unused) load are removed right after, under the GC lock, unless
something else references them.
"""

from __future__ import annotations

import contextlib
import fcntl
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from portside.errors import PortsideError
from portside.oci import mediatypes as mt
from portside.oci import reference as refs
from portside.oci.model import (
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    canonical_json,
    host_platform,
    parse_document,
)
from portside.store.archive_collect import Collector
from portside.store.archive_common import InvalidArchive, Progress
from portside.store.images import Image, ImageStore

_MAX_INDEX_DEPTH = 4
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"


@dataclass
class _Plan:
    """One image to record once the whole archive has checked out."""

    manifest: bytes
    media_type: str
    names: list[str] = field(default_factory=list)
    index_digest: str | None = None


def _parse(collector: Collector, fn: Any, *args: Any) -> Any:
    """Run a parser, turning its complaint into one about this archive."""
    try:
        return fn(*args)
    except InvalidArchive:
        raise
    except PortsideError as exc:
        raise InvalidArchive(collector.where, str(exc)) from None


# -- OCI image layout --


def _names_from(annotations: dict[str, str], c: Collector, where: str) -> list[str]:
    """Full image names an index entry carries (containerd's annotation, or a full ref.name)."""
    name = annotations.get(ANNOTATION_CONTAINERD_NAME) or ""
    ref_name = annotations.get(ANNOTATION_REF_NAME) or ""
    if not name and ("/" in ref_name or ":" in ref_name):
        name = ref_name  # a bare tag like "latest" names no repository: the image stays untagged
    if not name:
        return []
    return [str(_parse(c, refs.parse_tagged, name))]


def _pick_manifest(c: Collector, desc: Descriptor, where: str, depth: int = 0) -> Descriptor | None:
    """The image manifest an index entry stands for (the host's, for an index); None: no image."""
    if desc.media_type in mt.MANIFESTS:
        return desc
    if desc.media_type not in mt.INDEXES:
        raise InvalidArchive(c.where, f"{where}: unsupported media type {desc.media_type!r}")
    if depth >= _MAX_INDEX_DEPTH:
        raise InvalidArchive(c.where, f"{where}: indexes nested too deeply")
    blob = c.blob(desc, where)
    index = _parse(c, parse_document, c.read_blob(blob), f"index {desc.digest}", desc.media_type)
    if not isinstance(index, Index):
        raise InvalidArchive(c.where, f"{where}: {desc.digest} is not an index")
    chosen = index.for_platform()
    if chosen is None:
        plain = [m for m in index.manifests if m.platform is None]
        if len(index.manifests) == 1 and plain:
            chosen = plain[0]
        else:
            nested = [m for m in index.manifests if m.media_type in mt.INDEXES]
            for m in nested:
                found = _pick_manifest(c, m, f"index {desc.digest}", depth + 1)
                if found is not None:
                    return found
            raise InvalidArchive(
                c.where, f"{where}: index {desc.digest} has no image for {host_platform()}"
            )
    return _pick_manifest(c, chosen, f"index {desc.digest}", depth + 1)


def _plan_oci(c: Collector) -> list[_Plan]:
    if "oci-layout" in c.meta:
        layout = c.json("oci-layout")
        if not isinstance(layout, dict) or not isinstance(layout.get("imageLayoutVersion"), str):
            raise InvalidArchive(c.where, "oci-layout: missing imageLayoutVersion")
    index = _parse(c, parse_document, c.meta["index.json"], "index.json")
    if not isinstance(index, Index):
        raise InvalidArchive(c.where, "index.json is not an image index")
    plans: dict[str, _Plan] = {}
    for i, entry in enumerate(index.manifests):
        where = f"index.json manifests[{i}]"
        names = _names_from(entry.annotations, c, where)
        desc = _pick_manifest(c, entry, where)
        if desc is None:
            continue
        blob = c.blob(desc, where)
        data = c.read_blob(blob)
        manifest = _parse(c, parse_document, data, f"manifest {desc.digest}", desc.media_type)
        if not isinstance(manifest, Manifest):
            raise InvalidArchive(c.where, f"{where}: {desc.digest} is not a manifest")
        if not manifest.is_image:
            continue  # an artifact (signature, attestation...): not an image to load
        mwhere = f"manifest {desc.digest}"
        config_blob = c.blob(manifest.config, f"{mwhere} config")
        config = _parse(
            c, ImageConfig.parse, c.read_blob(config_blob), f"config {manifest.config.digest}"
        )
        layers = []
        for j, layer in enumerate(manifest.layers):
            lwhere = f"{mwhere} layers[{j}]"
            if layer.media_type not in mt.LAYERS:
                raise InvalidArchive(
                    c.where, f"{lwhere}: unsupported media type {layer.media_type!r}"
                )
            lblob = c.blob(layer, lwhere)
            declared, actual = mt.LAYERS[layer.media_type], c.compression(lblob)
            if not actual.startswith("corrupt") and declared != actual:
                raise InvalidArchive(
                    c.where,
                    f"{lwhere}: declared {declared or 'uncompressed'}, is {actual or 'uncompressed'}",
                )
            layers.append((lblob, lwhere))
        c.check_layers(config, layers, mwhere)
        index_digest = entry.digest if entry.digest != desc.digest else None
        plan = plans.setdefault(desc.digest, _Plan(data, manifest.media_type, [], index_digest))
        plan.names.extend(n for n in names if n not in plan.names)
    return list(plans.values())


# -- docker save archives --


def _str_list(value: Any, what: str, c: Collector) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArchive(c.where, f"manifest.json: {what} must be a list of strings")
    return list(value)


def _plan_docker(c: Collector) -> list[_Plan]:
    entries = c.json("manifest.json")
    if not isinstance(entries, list):
        raise InvalidArchive(c.where, "manifest.json is not a list")
    plans: dict[str, _Plan] = {}
    for i, entry in enumerate(entries):
        where = f"manifest.json[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise InvalidArchive(c.where, f"{where}: missing Config")
        config_blob = c.resolve(entry["Config"], f"{where} Config")
        config_bytes = c.read_blob(config_blob)
        config = _parse(c, ImageConfig.parse, config_bytes, f"config {entry['Config']}")
        layers = []
        for path in _str_list(entry.get("Layers"), "Layers", c):
            layers.append((c.resolve(path, f"{where} Layers"), f"layer {path}"))
        c.check_layers(config, layers, where)
        descriptors = []
        for blob, _ in layers:
            media_type = {"": mt.OCI_LAYER, "gzip": mt.OCI_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD}
            descriptors.append(
                {
                    "mediaType": media_type[c.compression(blob)],
                    "digest": blob.digest,
                    "size": blob.size,
                }
            )
        manifest = canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": mt.OCI_MANIFEST,
                "config": {
                    "mediaType": mt.OCI_CONFIG,
                    "digest": config_blob.digest,
                    "size": config_blob.size,
                },
                "layers": descriptors,
            }
        )
        names = [
            str(_parse(c, refs.parse_tagged, t))
            for t in _str_list(entry.get("RepoTags"), "RepoTags", c)
        ]
        plan = plans.setdefault(manifest.decode(), _Plan(manifest, mt.OCI_MANIFEST))
        plan.names.extend(n for n in names if n not in plan.names)
    return list(plans.values())


# -- the whole load --


def _discard_unreferenced(store: ImageStore, candidates: set[str]) -> None:
    """Remove blobs this load wrote that no image references, under the GC lock.

    Holding the exclusive lock means no import is half-way, so a blob that some other
    import is about to reference would already be recorded by then.
    """
    if not candidates:
        return
    with store._lock(fcntl.LOCK_EX):
        keep = store.referenced_blobs()
        for digest in candidates - keep:
            store.content.delete(digest)


def load_archive(
    store: ImageStore,
    source: str | Path | IO[bytes],
    where: str | None = None,
    progress: Progress | None = None,
) -> list[Image]:
    if isinstance(source, str | Path):
        path = Path(source)
        where = where or str(source)
        if not path.exists():
            raise InvalidArchive(where, "no such file or directory")
    else:
        path = None
        where = where or getattr(source, "name", None) or "input"
        where = str(where).replace("<stdin>", "standard input")
    collector = Collector(store, where, progress)
    loaded: list[Image] = []
    try:
        with store.importing():
            if path is not None and path.is_dir():
                collector.read_dir(path)
            elif path is not None:
                with open(path, "rb") as f:
                    collector.read_stream(f)
            else:
                assert not isinstance(source, str | Path)
                collector.read_stream(source)
            if "index.json" in collector.meta and (
                "oci-layout" in collector.meta or "manifest.json" not in collector.meta
            ):
                plans = _plan_oci(collector)  # also Docker 25+, whose archives are OCI layouts
            elif "manifest.json" in collector.meta:
                plans = _plan_docker(collector)
            else:
                raise InvalidArchive(
                    where, "not an image archive: it has neither manifest.json nor index.json"
                )
            if not plans:
                raise InvalidArchive(where, "the archive holds no image")
            for plan in plans:
                image = _parse(
                    collector,
                    store.add_image,
                    plan.manifest,
                    plan.names,
                    plan.index_digest,
                    plan.media_type,
                )
                loaded.append(_with_names(image, plan.names))
    finally:
        with contextlib.suppress(Exception):
            _discard_unreferenced(store, collector.written)
    return loaded


def _with_names(image: Image, names: list[str]) -> Image:
    from dataclasses import replace

    return replace(image, tags=tuple(names))
