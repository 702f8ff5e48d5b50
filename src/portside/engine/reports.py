"""Docker's JSON documents read into the engine interface's reports, once for every
implementation (the daemon's answers, the in-process engine's documents)."""

from __future__ import annotations

from typing import Any

from portside.engine.interface import ContainerSummary, ImageSummary, Port, PruneReport


def image_summary(doc: dict[str, Any]) -> ImageSummary:
    tags = [t for t in doc.get("RepoTags") or [] if t != "<none>:<none>"]
    digests = [d for d in doc.get("RepoDigests") or [] if not d.startswith("<none>")]
    return ImageSummary(id=doc["Id"], tags=tags, digests=digests, created=int(doc.get("Created") or 0),
                        size=int(doc.get("Size") or 0), labels=doc.get("Labels") or {},
                        containers=int(doc.get("Containers", -1)))


def container_summary(doc: dict[str, Any]) -> ContainerSummary:
    ports = [Port(private=int(p.get("PrivatePort") or 0), protocol=p.get("Type") or "tcp",
                  public=int(p.get("PublicPort") or 0), ip=p.get("IP") or "")
             for p in doc.get("Ports") or []]
    nets = list(((doc.get("NetworkSettings") or {}).get("Networks") or {}).keys())
    return ContainerSummary(
        id=doc["Id"], names=doc.get("Names") or [], image=doc.get("Image", ""),
        image_id=doc.get("ImageID", ""), command=doc.get("Command", ""),
        created=int(doc.get("Created") or 0), state=doc.get("State", ""),
        status=doc.get("Status", ""), labels=doc.get("Labels") or {}, ports=ports,
        mounts=[m.get("Name") or m.get("Source", "") for m in doc.get("Mounts") or []],
        networks=nets, size_rw=doc.get("SizeRw"))


def prune_report(doc: dict[str, Any], key: str) -> PruneReport:
    deleted, untagged = [], []
    for item in doc.get(key) or []:
        if isinstance(item, dict):
            if item.get("Untagged"):
                untagged.append(item["Untagged"])
            if item.get("Deleted"):
                deleted.append(item["Deleted"])
        else:
            deleted.append(str(item))
    return PruneReport(deleted=deleted, space_reclaimed=int(doc.get("SpaceReclaimed") or 0),
                       untagged=untagged)
