"""Handlers of exec instances: `POST /containers/{id}/exec`, `/exec/{id}/start|resize|json`.

Thin: the lifecycle (create, start attached or detached, the exit recorded before the
stream closes) is `portside.engine.execs`, shared with the in-process engine.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from portside.engine import execs
from portside.engine.api import streams
from portside.engine.api.containers import body_json, engine_of


async def create(request: web.Request) -> web.Response:
    engine = engine_of(request)
    execs.runnable(engine, request.match_info["id"])  # refused before a bad body is read
    body = await body_json(request)
    exec_id = execs.create(engine, request.match_info["id"], body)
    return web.json_response({"Id": exec_id}, status=201)


async def inspect(request: web.Request) -> web.Response:
    inst = execs.get(engine_of(request), request.match_info["id"])
    return web.json_response(execs.public(inst))


async def resize(request: web.Request) -> web.Response:
    inst = execs.get(engine_of(request), request.match_info["id"])
    execs.resize(inst, int(request.query.get("h") or 0), int(request.query.get("w") or 0))
    return web.Response(status=201)


async def start(request: web.Request) -> web.StreamResponse:
    engine = engine_of(request)
    inst = execs.get(engine, request.match_info["id"])
    body = await body_json(request)
    proc = await execs.begin(engine, inst, body)
    if body.get("Detach"):
        return web.Response(status=200)
    out = streams.Hijacked(request, bool(inst["ProcessConfig"]["tty"]))
    await out.open()
    await execs.pump(engine, inst, proc, out)
    await out.close()
    return out.resp or web.Response(status=200)


def routes() -> list[tuple[str, str, Any]]:
    return [
        ("POST", "/containers/{id}/exec", create),
        ("POST", "/exec/{id}/start", start),
        ("POST", "/exec/{id}/resize", resize),
        ("GET", "/exec/{id}/json", inspect),
    ]
