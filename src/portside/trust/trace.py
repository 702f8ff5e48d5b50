"""Traceability: from a container to the commit its image was built from.

`trace` joins what the engine already records: the container's image, the image's
manifest digest and layers, the history entry that made each layer (portside's builder
writes `Dockerfile:LINE` as the entry's comment), and the build's git labels and
annotations (`org.opencontainers.image.revision`, `.source`, portside's dirty flag; the
base image's name and digest). Labels travel in the image config, so an image pulled from
a registry traces as well as one built here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

REVISION = "org.opencontainers.image.revision"
SOURCE = "org.opencontainers.image.source"
DIRTY = "io.portside.image.revision.dirty"
BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"


@dataclass(frozen=True)
class LayerTrace:
    digest: str  # the layer blob as stored and pushed
    diff_id: str
    size: int
    step: str  # Dockerfile:LINE when portside built it, else the history's comment
    created_by: str


@dataclass(frozen=True)
class Trace:
    container: str
    container_id: str
    image: str  # the name the container was created from
    image_id: str
    manifest_digest: str
    repo_digests: list[str]
    revision: str
    source: str
    dirty: str
    base: str
    layers: list[LayerTrace] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class HistoryRow:
    created_by: str
    size: int
    comment: str


def trace(container: dict[str, Any], image: dict[str, Any], history: list[HistoryRow]) -> Trace:
    """The trace of a container from its inspect document, its image's inspect document and
    the image's history (newest first, as the engine answers it)."""
    labels: dict[str, str] = dict((image.get("Config") or {}).get("Labels") or {})
    annotations: dict[str, str] = dict(image.get("Annotations") or {})
    facts = {**labels, **annotations}
    blobs = [d.get("digest", "") for d in (image.get("Manifest") or {}).get("layers", [])]
    diff_ids = list((image.get("RootFS") or {}).get("Layers") or [])
    # A history entry made a layer when it has a size: any layer blob, even of an empty
    # tar, has bytes (the store gives empty-layer entries size 0).
    makers = [h for h in reversed(history) if h.size > 0]
    layers = []
    for i, blob in enumerate(blobs):
        maker = makers[i] if i < len(makers) and len(makers) == len(blobs) else None
        layers.append(LayerTrace(blob, diff_ids[i] if i < len(diff_ids) else "",
                                 maker.size if maker else 0,
                                 maker.comment if maker else "",
                                 maker.created_by if maker else ""))
    base = facts.get(BASE_NAME, "")
    if base and facts.get(BASE_DIGEST):
        base += "@" + facts[BASE_DIGEST]
    return Trace(
        container=str(container.get("Name", "")).lstrip("/"),
        container_id=str(container.get("Id", "")),
        image=str((container.get("Config") or {}).get("Image", "")),
        image_id=str(image.get("Id", "")),
        manifest_digest=str((image.get("Descriptor") or {}).get("digest", "")),
        repo_digests=list(image.get("RepoDigests") or []),
        revision=facts.get(REVISION, ""), source=facts.get(SOURCE, ""),
        dirty=facts.get(DIRTY, ""), base=base, layers=layers)
