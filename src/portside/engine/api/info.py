"""`GET /info`, `GET /version` and `GET /system/df`: the daemon and its host, measured
(`engine.hostinfo`, `engine.disk`), in Docker's shapes. (`POST /build/prune` is the build
API's, `engine/api/build.py`: it waits for running builds.)
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from portside.engine.api.containers import engine_of
from portside.engine.hostinfo import info_doc, version_doc
from portside.engine.imagedocs import summary as image_summary


async def info(request: web.Request) -> web.Response:
    return web.json_response(await asyncio.to_thread(info_doc, engine_of(request)))


async def version(request: web.Request) -> web.Response:
    return web.json_response(await asyncio.to_thread(version_doc, engine_of(request)))


async def system_df(request: web.Request) -> web.Response:
    from portside.engine import disk

    engine = engine_of(request)
    kinds = set(request.query.getall("type", []))

    def summary(image: Any) -> dict[str, Any]:
        return image_summary(engine.image_service, image)

    return web.json_response(await asyncio.to_thread(disk.system_df, engine, summary, kinds))


def routes() -> list[tuple[str, str, Any]]:
    return [("GET", "/info", info), ("GET", "/version", version),
            ("GET", "/system/df", system_df)]
