"""`POST /images/create?fromSrc=-` (`docker import`): the body is a filesystem tarball.

Implemented here, beside the read-only image handlers, until the daemon's image
endpoints (pull and the rest) land; it uses only `engine.imports`.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from portside.engine.api.containers import engine_of
from portside.engine.imports import import_tarball
from portside.errors import InvalidArgument


def _reference(repo: str, tag: str) -> str | None:
    if not repo:
        return None
    if tag:
        return f"{repo}:{tag}"
    return repo


async def import_image(request: web.Request) -> web.StreamResponse:
    engine = engine_of(request)
    source = request.query.get("fromSrc") or ""
    if source != "-":
        raise InvalidArgument(f"importing from {source!r} is not supported: send the tarball"
                              " as the request body (fromSrc=-)")
    ref = _reference(request.query.get("repo", ""), request.query.get("tag", ""))
    if ref is not None:
        from portside.oci import reference as refs

        refs.parse_tagged(ref)  # a bad name is a 400 before the upload is read
    loop = asyncio.get_running_loop()

    def read(n: int) -> bytes:
        data: bytes = asyncio.run_coroutine_threadsafe(request.content.read(n), loop).result()
        return data

    def work() -> str:
        with engine.image_lock:
            image = import_tarball(engine.images, read, ref, request.query.get("message", ""),
                                   request.query.getall("changes", []))
        return image.id

    image_id = await asyncio.to_thread(work)
    engine.events.publish("image", "import", image_id, {"name": ref or image_id})
    return web.Response(body=json.dumps({"status": image_id}).encode() + b"\n",
                        content_type="application/json")
