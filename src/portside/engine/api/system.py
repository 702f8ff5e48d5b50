"""System and volume handlers: `_ping`, `events`, `/volumes` (`info`, `version` and
`system/df` are in `info`)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from portside.engine import operations
from portside.engine.api.containers import body_json, engine_of, flag
from portside.engine.hostinfo import API_VERSION
from portside.engine.query import normalise_filters


async def ping(request: web.Request) -> web.Response:
    headers = {"Api-Version": API_VERSION, "Ostype": "linux", "Docker-Experimental": "false",
               "Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"}
    if request.method == "HEAD":
        return web.Response(status=200, headers=headers)
    return web.Response(text="OK", headers=headers)


async def events(request: web.Request) -> web.StreamResponse:
    """Docker's `since`/`until`/`filters`, plus portside's `after_revision=N`: replay the
    kept events whose `revision` is greater than N (the last one a client saw) before
    following live ones; 410 if some of them have been discarded."""
    watch = operations.EventWatch(engine_of(request), request.query.get("since"),
                                  request.query.get("until"),
                                  request.query.get("after_revision"),
                                  normalise_filters(request.query.get("filters")))
    try:
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        async for e in watch.stream():
            await resp.write(json.dumps(e).encode() + b"\n")
    except ConnectionError:
        pass
    finally:
        watch.close()
    await resp.write_eof()
    return resp


# -- volumes --

async def list_volumes(request: web.Request) -> web.Response:
    filters = normalise_filters(request.query.get("filters"))
    out = operations.volume_list(engine_of(request), filters)
    return web.json_response({"Volumes": out, "Warnings": None})


async def create_volume(request: web.Request) -> web.Response:
    engine = engine_of(request)
    body = await body_json(request)
    return web.json_response(operations.volume_create(engine, body), status=201)


async def inspect_volume(request: web.Request) -> web.Response:
    return web.json_response(engine_of(request).volumes.get(request.match_info["name"]))


async def remove_volume(request: web.Request) -> web.Response:
    operations.volume_remove(engine_of(request), request.match_info["name"],
                             flag(request, "force"))
    return web.Response(status=204)


async def prune_volumes(request: web.Request) -> web.Response:
    """Docker (API >= 1.42) prunes only anonymous volumes unless `all=true` is filtered;
    a client of an older API (Docker 20.10's is 1.41) gets every unused volume pruned."""
    filters = normalise_filters(request.query.get("filters"))
    return web.json_response(operations.volume_prune(engine_of(request), filters,
                                                     request.match_info.get("version")))


def routes() -> list[tuple[str, str, Any]]:
    return [
        ("GET", "/_ping", ping), ("HEAD", "/_ping", ping),
        ("GET", "/events", events),
        ("GET", "/volumes", list_volumes), ("POST", "/volumes/create", create_volume),
        ("POST", "/volumes/prune", prune_volumes),
        ("GET", "/volumes/{name}", inspect_volume), ("DELETE", "/volumes/{name}", remove_volume),
    ]
