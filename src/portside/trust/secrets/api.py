"""`/secrets` and `/configs` of the Docker Engine API, over the secret stores.

Docker's shapes and codes: create 201 `{"ID"}`, list and inspect 200, update 200 (only
labels, with `?version=` the object's `Version.Index`), delete 204; a name in use is 409,
an unknown object 404, bad input 400 (the engine API's error middleware maps them).
Each change is an event (`Type` secret or config, `Action` create/update/remove, the
object's ID and `name`, as Docker's; never the data).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from portside.engine.events import EventBus
from portside.engine.query import normalise_filters
from portside.errors import InvalidArgument
from portside.trust.secrets.store import SecretStore

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise InvalidArgument("invalid JSON body") from None
    if not isinstance(body, dict):
        raise InvalidArgument("invalid body: expected a JSON object")
    return body


def _handlers(store: SecretStore, events: EventBus) -> list[tuple[str, str, Handler]]:
    word = store.kind.word
    plural = f"/{word}s"

    def tell(action: str, sid: str, name: str) -> None:
        events.publish(word, action, sid, {"name": name})

    async def create(request: web.Request) -> web.Response:
        sid = await asyncio.to_thread(store.create, await _body(request))
        tell("create", sid, store.lookup(sid)[1])
        return web.json_response({"ID": sid}, status=201)

    async def listing(request: web.Request) -> web.Response:
        filters = normalise_filters(request.query.get("filters"))
        return web.json_response(await asyncio.to_thread(store.list, filters))

    async def inspect(request: web.Request) -> web.Response:
        return web.json_response(await asyncio.to_thread(store.inspect, request.match_info["id"]))

    async def update(request: web.Request) -> web.Response:
        version = request.query.get("version", "")
        if not version.isdigit():
            raise InvalidArgument(f"invalid version {version!r}: expected the object's "
                                  "Version.Index")
        sid, name = await asyncio.to_thread(store.lookup, request.match_info["id"])
        await asyncio.to_thread(store.update, sid, int(version), await _body(request))
        tell("update", sid, name)
        return web.Response(status=200)

    async def delete(request: web.Request) -> web.Response:
        sid, name = await asyncio.to_thread(store.lookup, request.match_info["id"])
        await asyncio.to_thread(store.remove, sid)
        tell("remove", sid, name)
        return web.Response(status=204)

    return [("POST", f"{plural}/create", create), ("GET", plural, listing),
            ("GET", f"{plural}/{{id}}", inspect), ("POST", f"{plural}/{{id}}/update", update),
            ("DELETE", f"{plural}/{{id}}", delete)]


def add_routes(app: web.Application, events: EventBus, *stores: SecretStore) -> None:
    for store in stores:
        for method, path, handler in _handlers(store, events):
            app.router.add_route(method, path, handler)
            app.router.add_route(method, r"/v{version:\d+\.\d+}" + path, handler)
