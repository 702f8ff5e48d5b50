"""Manifest handlers: GET/HEAD/PUT/DELETE by tag or digest, and the referrers API."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from portside.oci import digest as digests
from portside.oci import mediatypes as mt
from portside.oci.model import MAX_MANIFEST_BYTES
from portside.registry import protocol
from portside.registry.errors import RegistryError

if TYPE_CHECKING:
    from portside.registry.serverstate import Registry

Route = protocol.Route
ATTACHMENT_TAG = re.compile(r"sha256-[0-9a-f]{64}\.(sig|att|sbom)")


async def get(request: web.Request, registry: Registry, route: Route) -> web.Response:
    reference = protocol.validate_reference(route.id)
    storage = registry.storage
    if registry.proxy is not None:
        await registry.proxy.fetch_manifest(route.name, reference)
    record = storage.resolve(route.name, reference)
    body = storage.manifest_bytes(record)
    headers = {
        "Docker-Content-Digest": record.digest,
        "Content-Type": record.media_type,
        "ETag": f'"{record.digest}"',
    }
    return web.Response(body=body, headers=headers)


async def read_manifest_body(request: web.Request) -> bytes:
    """The request body, refused past 4 MiB without reading it all (413, MANIFEST_INVALID)."""
    declared = request.content_length
    if declared is not None and declared > MAX_MANIFEST_BYTES:
        raise RegistryError("MANIFEST_INVALID", f"manifest of {declared} bytes exceeds 4 MiB", status=413)
    parts: list[bytes] = []
    total = 0
    async for chunk in request.content.iter_any():
        total += len(chunk)
        if total > MAX_MANIFEST_BYTES:
            raise RegistryError("MANIFEST_INVALID", "manifest exceeds 4 MiB", status=413)
        parts.append(chunk)
    if declared is not None and total != declared:
        raise RegistryError("SIZE_INVALID", f"body is {total} bytes, Content-Length says {declared}")
    return b"".join(parts)


async def put(request: web.Request, registry: Registry, route: Route) -> web.Response:
    reference = protocol.validate_reference(route.id)
    body = await read_manifest_body(request)
    registry.stats["manifest_bytes"] += len(body)
    if registry.push_policy is not None and ":" not in reference \
            and not ATTACHMENT_TAG.fullmatch(reference):
        # a tag is judged; a push by digest is not, so an image can be pushed by digest,
        # signed, then tagged (and signatures, `sha256-<hex>.sig`, are attachments)
        reason = await registry.push_policy.refusal(request.host, route.name, reference,
                                                    digests.of_bytes(body))
        if reason is not None:
            raise RegistryError("DENIED", reason, {"tag": reference}, status=403)
    digest, record = registry.storage.put_manifest(
        route.name, reference, body, request.headers.get("Content-Type")
    )
    headers = {
        "Location": f"/v2/{route.name}/manifests/{digest}",
        "Docker-Content-Digest": digest,
        "Content-Length": "0",
    }
    if record.subject:
        headers["OCI-Subject"] = record.subject
    return web.Response(status=201, headers=headers)


async def delete(request: web.Request, registry: Registry, route: Route) -> web.Response:
    reference = protocol.validate_reference(route.id)
    registry.storage.delete_manifest(route.name, reference)
    return web.Response(status=202, headers={"Content-Length": "0"})


async def referrers(request: web.Request, registry: Registry, route: Route) -> web.Response:
    subject = protocol.validate_digest(route.id)
    wanted = request.query.getall("artifactType", [])
    entries: list[dict[str, Any]] = []
    for record in registry.storage.referrers(route.name, subject):
        if wanted and record.artifact_type not in wanted:
            continue
        entry: dict[str, Any] = {
            "mediaType": record.media_type,
            "digest": record.digest,
            "size": record.size,
        }
        if record.artifact_type:
            entry["artifactType"] = record.artifact_type
        if record.annotations:
            entry["annotations"] = record.annotations
        entries.append(entry)
    headers = {"Content-Type": mt.OCI_INDEX}
    if wanted:
        headers["OCI-Filters-Applied"] = "artifactType"
    body = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries}
    return web.Response(body=json.dumps(body).encode(), headers=headers)
