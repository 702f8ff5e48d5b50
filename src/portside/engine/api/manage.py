"""`POST /containers/{id}/update` and `POST /containers/{id}/rename` (engine.manage)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from portside.engine import manage
from portside.engine.api.containers import body_json, engine_of


async def update(request: web.Request) -> web.Response:
    warnings = await manage.update(engine_of(request), request.match_info["id"],
                                   await body_json(request))
    return web.json_response({"Warnings": warnings})


async def rename(request: web.Request) -> web.Response:
    await asyncio.to_thread(manage.rename, engine_of(request), request.match_info["id"],
                            request.query.get("name", ""))
    return web.Response(status=204)


def routes() -> list[tuple[str, str, Any]]:
    return [("POST", "/containers/{id}/update", update),
            ("POST", "/containers/{id}/rename", rename)]
