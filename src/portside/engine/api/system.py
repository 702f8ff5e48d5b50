"""System and volume handlers: `_ping`, `events`, `/volumes` (`info`, `version` and
`system/df` are in `info`)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web

from portside.engine import events as events_mod
from portside.engine.api.containers import body_json, engine_of, flag
from portside.engine.query import normalise_filters
from portside.errors import InvalidArgument

API_VERSION = "1.43"
MIN_API_VERSION = "1.24"


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
    from portside.engine.options import parse_time_or_duration

    engine = engine_of(request)
    now = time.time()
    since = request.query.get("since")
    until = request.query.get("until")
    after = request.query.get("after_revision")
    since_t = parse_time_or_duration(since, now) if since else None
    until_t = parse_time_or_duration(until, now) if until else None
    if after is not None and not after.isdigit():
        raise InvalidArgument(f"after_revision must be a revision number, got {after!r}")
    filters = normalise_filters(request.query.get("filters"))
    q = engine.events.subscribe()  # before reading the kept ones: nothing falls in between
    try:
        replay: list[dict[str, Any]] = []
        if after is not None:
            replay = engine.events.after(int(after))
            if since_t is not None:
                replay = [e for e in replay if e["timeNano"] >= since_t * 1e9]
        elif since_t is not None:
            replay = engine.events.since(since_t)
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        last = 0  # the revision last sent: a live event already replayed is not sent again
        for e in replay:
            if until_t is not None and e["timeNano"] >= until_t * 1e9:
                break
            last = e["revision"]
            if events_mod.matches(e, filters):
                await resp.write(json.dumps(e).encode() + b"\n")
        while until_t is None or time.time() < until_t:
            timeout = None if until_t is None else max(0.0, until_t - time.time())
            try:
                e = await asyncio.wait_for(q.get(), timeout)
            except TimeoutError:
                break
            if until_t is not None and e["timeNano"] >= until_t * 1e9:
                break
            if e["revision"] <= last:
                continue
            last = e["revision"]
            if events_mod.matches(e, filters):
                await resp.write(json.dumps(e).encode() + b"\n")
    except ConnectionError:
        pass
    finally:
        engine.events.unsubscribe(q)
    await resp.write_eof()
    return resp


# -- volumes --

def _volume_labels_match(v: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    """Docker's `label` (key or key=value, all must hold) and `label!` (none may) filters."""
    labels = v.get("Labels") or {}

    def has(item: str) -> bool:
        key, eq, value = item.partition("=")
        return key in labels and (not eq or labels[key] == value)

    return all(has(i) for i in filters.get("label", [])) and not any(
        has(i) for i in filters.get("label!", []))


async def list_volumes(request: web.Request) -> web.Response:
    engine = engine_of(request)
    filters = normalise_filters(request.query.get("filters"))
    out = []
    for v in engine.volumes.list():
        users = engine.volume_users(v["Name"])
        if "dangling" in filters and (filters["dangling"][0] in ("true", "1")) == bool(users):
            continue
        if "name" in filters and not any(n in v["Name"] for n in filters["name"]):
            continue
        if "driver" in filters and v["Driver"] not in filters["driver"]:
            continue
        if not _volume_labels_match(v, filters):
            continue
        out.append(v)
    return web.json_response({"Volumes": out, "Warnings": None})


async def create_volume(request: web.Request) -> web.Response:
    engine = engine_of(request)
    body = await body_json(request)
    driver = body.get("Driver") or "local"
    if driver != "local":
        raise InvalidArgument(f"volume driver {driver!r} is not supported (only local)")
    doc, new = engine.volumes.create(body.get("Name") or "", body.get("Labels") or {})
    if new:
        engine.events.publish("volume", "create", doc["Name"], {"driver": "local"})
    return web.json_response(doc, status=201)


async def inspect_volume(request: web.Request) -> web.Response:
    return web.json_response(engine_of(request).volumes.get(request.match_info["name"]))


async def remove_volume(request: web.Request) -> web.Response:
    engine = engine_of(request)
    name = request.match_info["name"]
    engine.volumes.remove(name, engine.volume_users(name), flag(request, "force"))
    engine.events.publish("volume", "destroy", name, {"driver": "local"})
    return web.Response(status=204)


async def prune_volumes(request: web.Request) -> web.Response:
    """Docker (API >= 1.42) prunes only anonymous volumes unless `all=true` is filtered;
    a client of an older API (Docker 20.10's is 1.41) gets every unused volume pruned."""
    engine = engine_of(request)
    filters = normalise_filters(request.query.get("filters"))
    everything = (filters.get("all") or ["false"])[0] in ("true", "1")
    asked = request.match_info.get("version")
    if asked and tuple(int(p) for p in asked.split(".")) < (1, 42):
        everything = True
    deleted, reclaimed = [], 0
    for v in engine.volumes.list():
        name = v["Name"]
        if engine.volume_users(name):
            continue
        if not everything and not engine.volumes.is_anonymous(name):
            continue
        if not _volume_labels_match(v, filters):
            continue
        reclaimed += engine.volumes.size(name)
        engine.volumes.remove(name, [])
        engine.events.publish("volume", "destroy", name, {"driver": "local"})
        deleted.append(name)
    return web.json_response({"VolumesDeleted": deleted or None, "SpaceReclaimed": reclaimed})


def routes() -> list[tuple[str, str, Any]]:
    return [
        ("GET", "/_ping", ping), ("HEAD", "/_ping", ping),
        ("GET", "/events", events),
        ("GET", "/volumes", list_volumes), ("POST", "/volumes/create", create_volume),
        ("POST", "/volumes/prune", prune_volumes),
        ("GET", "/volumes/{name}", inspect_volume), ("DELETE", "/volumes/{name}", remove_volume),
    ]
