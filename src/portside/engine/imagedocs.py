"""The image documents of the Docker Engine API, shaped once for the daemon's handlers
(`engine.api.images`) and the in-process engine (`engine.local`): listing with its
filters, inspect, history, rmi's and prune's answers, prune's filters, load's names."""

from __future__ import annotations

import fnmatch
import time
from datetime import UTC, datetime
from typing import Any

from portside.engine.images import ImageService
from portside.engine.imagetypes import (
    HistoryEntry,
    PruneFilters,
    PruneReport,
    RemovedItem,
    label_matches,
)
from portside.engine.options import parse_time_or_duration
from portside.errors import InvalidArgument
from portside.oci import reference as refs
from portside.store.describe import inspect as describe_image
from portside.store.images import Image
from portside.times import parse_time


def familiar(tag: str) -> str:
    return refs.parse(tag).familiar()


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _repo_digests(image: Image) -> list[str]:
    digest = image.index_digest or image.manifest_digest
    return sorted({f"{refs.parse(t).familiar_repository}@{digest}" for t in image.tags})


def summary(service: ImageService, image: Image) -> dict[str, Any]:
    """One image as `GET /images/json` lists it."""
    cfg = service.store.config(image)
    return {"Id": image.id, "ParentId": "", "RepoTags": [familiar(t) for t in image.tags],
            "RepoDigests": _repo_digests(image), "Created": int(parse_time(image.created) or 0),
            "Size": image.size, "SharedSize": -1, "VirtualSize": image.size,
            "Labels": cfg.config.get("Labels") or {},
            "Containers": len(service.store.holders(image))}


def _listed(image: Image, labels: dict[str, str], filters: dict[str, list[str]]) -> bool:
    dangling = filters.get("dangling")
    if dangling and (dangling[0] in ("true", "1")) == bool(image.tags):
        return False
    if "reference" in filters:
        names = [refs.parse(t) for t in image.tags]
        if not any(fnmatch.fnmatch(n.familiar(), pattern)
                   or fnmatch.fnmatch(n.familiar_repository, pattern)
                   for n in names for pattern in filters["reference"]):
            return False
    return all(label_matches(labels, spec) for spec in filters.get("label", []))


def summaries(service: ImageService, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
    """`GET /images/json`: the images that pass `filters` (dangling, reference, label)."""
    with service.lock:
        out = []
        for image in service.store.list():
            doc = summary(service, image)
            if _listed(image, doc["Labels"], filters):
                out.append(doc)
        return out


def inspect(service: ImageService, name: str) -> dict[str, Any]:
    """`GET /images/{name}/json`."""
    with service.lock:
        image = service.get(name)
        doc = describe_image(service.store, image)  # the one document, as the CLI shows it
    return {**doc, "Parent": "", "Comment": "",
            "GraphDriver": {"Name": "overlay", "Data": None},
            "Metadata": {"LastTagTime": _rfc3339(image.added)}}


def history(entries: list[HistoryEntry]) -> list[dict[str, Any]]:
    return [{"Id": e.id, "Created": e.created, "CreatedBy": e.created_by, "Tags": e.tags,
             "Size": e.size, "Comment": e.comment} for e in entries]


def removed(items: list[RemovedItem]) -> list[dict[str, str]]:
    """rmi's answer: `{"Untagged": tag}` and `{"Deleted": id}` items."""
    return [{kind: value} for kind, value in items]


def prune_filters(filters: dict[str, list[str]]) -> PruneFilters:
    """`POST /images/prune`'s filters: dangling (default true), until, label, label!."""
    unknown = set(filters) - {"dangling", "until", "label", "label!"}
    if unknown:
        raise InvalidArgument(f"invalid filter '{sorted(unknown)[0]}'")
    out = PruneFilters()
    dangling = filters.get("dangling") or ["true"]
    if dangling[0].lower() not in ("true", "false", "1", "0"):
        raise InvalidArgument(f"invalid filter 'dangling={dangling[0]}'")
    out.dangling_only = dangling[0].lower() in ("true", "1")
    if filters.get("until"):
        out.until = parse_time_or_duration(filters["until"][0], time.time())
    out.labels = list(filters.get("label", []))
    out.not_labels = list(filters.get("label!", []))
    return out


def prune_report(report: PruneReport) -> dict[str, Any]:
    return {"ImagesDeleted": removed(report.removed) or None,
            "SpaceReclaimed": report.reclaimed}


def loaded(images: list[Image]) -> list[tuple[str, str]]:
    """What a load made known, as its answer names it: ("Loaded image", tag) for each tag,
    ("Loaded image ID", id) for an image without one."""
    out: list[tuple[str, str]] = []
    for image in images:
        names = [("Loaded image", familiar(t)) for t in image.tags]
        out += names or [("Loaded image ID", image.id)]
    return out


def check_save(names: list[str], fmt: str) -> None:
    """A save names at least one image and an archive format (`oci` or `docker`)."""
    if not names:
        raise InvalidArgument("no image names given (names=...)")
    if fmt not in ("oci", "docker"):
        raise InvalidArgument(f"invalid archive format {fmt!r} (oci or docker)")
