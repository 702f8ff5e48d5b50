"""Blob handlers: GET/HEAD/DELETE, and uploads (monolithic, POST+PUT, chunked PATCH, mount).

Bodies are streamed to disk while hashed, never held in memory; a blob becomes visible only
through `RegistryStorage.complete_upload` or `ContentStore` commit, both of which verify it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from portside.registry import protocol
from portside.registry.errors import RegistryError
from portside.registry.serverstate import CALLER, granted

if TYPE_CHECKING:
    from portside.registry.serverstate import Registry

Route = protocol.Route


async def get(request: web.Request, registry: Registry, route: Route) -> web.StreamResponse:
    digest = protocol.validate_digest(route.id)
    storage = registry.storage
    if request.method == "HEAD" and registry.proxy is None:
        # HEAD answers from one query and one stat, on the loop: FileResponse would hop to
        # the thread pool twice (stat, open) for a file it then does not send.
        size = storage.blob_size(route.name, digest)
        if size is None:
            raise RegistryError("BLOB_UNKNOWN", f"blob {digest} unknown to {route.name}",
                                {"digest": digest})
        return web.Response(headers={
            "Docker-Content-Digest": digest,
            "Content-Type": "application/octet-stream",
            "Content-Length": str(size),
            "Accept-Ranges": "bytes",
            "ETag": f'"{digest}"',
        })
    if not storage.has_blob(route.name, digest) and registry.proxy is not None:
        await registry.proxy.fetch_blob(route.name, digest)
    path = storage.blob_path(route.name, digest)
    headers = {
        "Docker-Content-Digest": digest,
        "Content-Type": "application/octet-stream",
        "Accept-Ranges": "bytes",
    }
    return web.FileResponse(path, headers=headers)


async def delete(request: web.Request, registry: Registry, route: Route) -> web.Response:
    digest = protocol.validate_digest(route.id)
    registry.storage.unlink_blob(route.name, digest)
    return web.Response(status=202, headers={"Docker-Content-Digest": digest})


def _upload_headers(route: Route, upload_id: str, size: int) -> dict[str, str]:
    return {
        "Location": f"/v2/{route.name}/blobs/uploads/{upload_id}",
        "Range": f"0-{max(size - 1, 0)}",
        "Docker-Upload-UUID": upload_id,
        "Content-Length": "0",
    }


def _created(route: Route, digest: str) -> web.Response:
    return web.Response(status=201, headers={
        "Location": f"/v2/{route.name}/blobs/{digest}",
        "Docker-Content-Digest": digest,
        "Content-Length": "0",
    })


BATCH = 1 << 20


async def _stream_body(request: web.Request, registry: Registry,
                       sink: Callable[[list[bytes]], Any], limit: int | None = None) -> int:
    """Feed the request body to `sink`; SIZE_INVALID when it is not Content-Length long.

    The sink (hash + write) runs on a worker thread in batches of about 1 MiB, one batch at
    a time, so hashing and disk writes overlap with receiving the next batch (hashlib and
    file writes release the GIL); order is kept because a batch waits for the previous one.
    """
    loop = asyncio.get_running_loop()
    declared = request.content_length
    count = 0
    parts: list[bytes] = []
    buffered = 0
    pending: asyncio.Future[Any] | None = None
    try:
        async for chunk in request.content.iter_any():
            count += len(chunk)
            if limit is not None and count > limit:
                raise RegistryError("SIZE_INVALID", f"body longer than the {limit} bytes announced")
            parts.append(chunk)
            buffered += len(chunk)
            if buffered >= BATCH:
                if pending is not None:
                    await pending
                pending = loop.run_in_executor(None, sink, parts)
                parts = []
                buffered = 0
    except (ConnectionError, aiohttp.ClientPayloadError, HttpProcessingError):
        # The client went away: keep what arrived whole, so the upload can resume from it.
        if pending is not None:
            await asyncio.shield(pending)
            pending = None
        if parts:
            await asyncio.shield(loop.run_in_executor(None, sink, parts))
        raise
    finally:
        if pending is not None:
            await asyncio.shield(pending)  # never leave a write running behind an error
    if parts:
        await loop.run_in_executor(None, sink, parts)
    registry.stats["body_bytes"] += count
    if count:
        registry.stats["bodies"] += 1
    if declared is not None and count != declared:
        raise RegistryError("SIZE_INVALID", f"body is {count} bytes, Content-Length says {declared}")
    return count


async def start_upload(request: web.Request, registry: Registry, route: Route) -> web.Response:
    storage = registry.storage
    query = request.query
    if "mount" in query:
        digest = protocol.validate_digest(query["mount"])
        source = query.get("from", "")
        if source:
            source = protocol.validate_name(source)
            if "pull" in granted(registry, request[CALLER], source) and storage.mount(
                route.name, digest, source
            ):
                return _created(route, digest)
        elif storage.content.exists(digest) and not registry.access.enabled:
            # No `from` (spec 1.1 lets a registry mount any blob it has): only when open.
            storage.link_blob(route.name, digest)
            return _created(route, digest)
    if "digest" in query:
        digest = protocol.validate_digest(query["digest"])
        return await _monolithic(request, registry, route, digest)
    upload_id = storage.start_upload(route.name)
    if request.content_length:  # a POST with a body and no digest: keep it as a first chunk
        await patch_upload(request, registry, Route(route.kind, route.name, upload_id))
    size = storage.upload_size(route.name, upload_id)
    return web.Response(status=202, headers=_upload_headers(route, upload_id, size))


async def _monolithic(request: web.Request, registry: Registry, route: Route,
                      digest: str) -> web.Response:
    """A blob in one request: streamed into a private upload, verified, then published."""
    storage = registry.storage
    upload_id = storage.start_upload(route.name)
    try:
        await _append(request, registry, Route(route.kind, route.name, upload_id), upload_id)
        await asyncio.get_running_loop().run_in_executor(
            None, storage.verify_upload, route.name, upload_id, digest)
        storage.link_blob(route.name, digest)
    finally:
        storage.cancel_upload(route.name, upload_id)
    return _created(route, digest)


async def upload_status(request: web.Request, registry: Registry, route: Route) -> web.Response:
    upload_id = protocol.validate_upload_id(route.id)
    size = registry.storage.upload_size(route.name, upload_id)
    return web.Response(status=204, headers=_upload_headers(route, upload_id, size))


async def _append(request: web.Request, registry: Registry, route: Route, upload_id: str) -> int:
    """Append the request body to an upload, honouring Content-Range; returns the new size."""
    storage = registry.storage
    size = storage.upload_size(route.name, upload_id)
    expected: int | None = None
    if "Content-Range" in request.headers:
        start, end = protocol.parse_content_range(request.headers["Content-Range"])
        if start != size:
            raise RegistryError(
                "BLOB_UPLOAD_INVALID", f"chunk starts at {start}, upload has {size} bytes",
                status=416, headers=_upload_headers(route, upload_id, size),
            )
        expected = end - start + 1
        if request.content_length is not None and request.content_length != expected:
            raise RegistryError(
                "BLOB_UPLOAD_INVALID", "Content-Length does not match Content-Range", status=416,
                headers=_upload_headers(route, upload_id, size),
            )
    f = storage.open_upload(route.name, upload_id)
    try:
        count = await _stream_body(request, registry, f.write_parts, expected)
        if expected is not None and count != expected:
            raise RegistryError("SIZE_INVALID", f"chunk is {count} bytes, Content-Range says {expected}")
    except BaseException:
        # A bad chunk leaves the upload as it was; an interrupted one keeps what arrived
        # (resumable from the offset an upload status reports) when no range was promised.
        if expected is not None:
            f.truncate(size)
        raise
    finally:
        f.close()
    return size + count


@contextlib.contextmanager
def _claim(registry: Registry, route: Route, upload_id: str) -> Iterator[None]:
    """One request at a time per upload: two writers would interleave the file and its hash."""
    storage = registry.storage
    storage.upload_dir(route.name, upload_id)  # BLOB_UPLOAD_UNKNOWN first
    if upload_id in storage.busy:
        raise RegistryError("BLOB_UPLOAD_INVALID", f"upload {upload_id} is in use by another request")
    storage.busy.add(upload_id)
    try:
        yield
    finally:
        storage.busy.discard(upload_id)


async def patch_upload(request: web.Request, registry: Registry, route: Route) -> web.Response:
    upload_id = protocol.validate_upload_id(route.id)
    with _claim(registry, route, upload_id):
        size = await _append(request, registry, route, upload_id)
    return web.Response(status=202, headers=_upload_headers(route, upload_id, size))


async def put_upload(request: web.Request, registry: Registry, route: Route) -> web.Response:
    upload_id = protocol.validate_upload_id(route.id)
    if "digest" not in request.query:
        raise RegistryError("DIGEST_INVALID", "the digest query parameter is required")
    digest = protocol.validate_digest(request.query["digest"])
    storage = registry.storage
    with _claim(registry, route, upload_id):
        if request.content_length or request.headers.get("Transfer-Encoding"):
            await _append(request, registry, route, upload_id)
        await asyncio.get_running_loop().run_in_executor(
            None, storage.verify_upload, route.name, upload_id, digest)
        storage.link_blob(route.name, digest)
        storage.cancel_upload(route.name, upload_id)
    return _created(route, digest)


async def cancel_upload(request: web.Request, registry: Registry, route: Route) -> web.Response:
    upload_id = protocol.validate_upload_id(route.id)
    with _claim(registry, route, upload_id):
        registry.storage.cancel_upload(route.name, upload_id)
    return web.Response(status=204)

