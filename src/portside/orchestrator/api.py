"""The Docker Engine API's swarm routes, thin over `SwarmAPI` and `ServicesAPI`:
`/swarm` (init, inspect, leave), `/nodes`, `/services` (create, inspect, update, delete,
logs) and `/tasks`, with Docker's shapes and status codes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from typing import Any

from aiohttp import web

from portside.engine.api import streams
from portside.engine.interface import LogOptions
from portside.errors import InvalidArgument
from portside.orchestrator.interface import ServicesAPI, SwarmAPI
from portside.orchestrator.services import add_status

SWARM: web.AppKey[SwarmAPI] = web.AppKey("swarm", SwarmAPI)
SERVICES: web.AppKey[ServicesAPI] = web.AppKey("services", ServicesAPI)


def _filters(request: web.Request) -> dict[str, list[str]]:
    raw = request.query.get("filters")
    if not raw:
        return {}
    doc = json.loads(raw)
    if not isinstance(doc, dict):
        raise InvalidArgument(f"invalid filters: {raw}")
    return {k: list(v) if isinstance(v, list) else [n for n, on in v.items() if on]
            for k, v in doc.items()}


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    doc = json.loads(raw) if raw.strip() else {}
    if not isinstance(doc, dict):
        raise InvalidArgument("request body must be a JSON object")
    return doc


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true", "yes")


async def swarm_init(request: web.Request) -> web.Response:
    node_id = await asyncio.to_thread(request.app[SWARM].init, await _body(request))
    return web.json_response(node_id)


async def swarm_inspect(request: web.Request) -> web.Response:
    return web.json_response(await asyncio.to_thread(request.app[SWARM].inspect))


async def swarm_leave(request: web.Request) -> web.Response:
    await asyncio.to_thread(request.app[SWARM].leave, _flag(request, "force"))
    return web.Response(status=200)


async def nodes(request: web.Request) -> web.Response:
    return web.json_response(await asyncio.to_thread(request.app[SWARM].nodes,
                                                     _filters(request)))


async def node(request: web.Request) -> web.Response:
    return web.json_response(await asyncio.to_thread(request.app[SWARM].node,
                                                     request.match_info["id"]))


async def node_update(request: web.Request) -> web.Response:
    raw = request.query.get("version", "")
    if not raw.isdigit():
        raise InvalidArgument(f"invalid node version {raw!r}")
    await asyncio.to_thread(request.app[SWARM].update_node, request.match_info["id"],
                            int(raw), await _body(request))
    return web.Response(status=200)


async def services(request: web.Request) -> web.Response:
    api = request.app[SERVICES]
    docs = await asyncio.to_thread(api.list, _filters(request))
    if _flag(request, "status"):  # `?status=true`: running, desired and completed counts
        add_status(docs, await asyncio.to_thread(api.tasks, {}))
    return web.json_response(docs)


async def service_create(request: web.Request) -> web.Response:
    sid, warnings = await asyncio.to_thread(request.app[SERVICES].create, await _body(request))
    return web.json_response({"ID": sid, "Warnings": warnings or None}, status=201)


async def service_inspect(request: web.Request) -> web.Response:
    return web.json_response(await asyncio.to_thread(request.app[SERVICES].inspect,
                                                     request.match_info["id"]))


async def service_update(request: web.Request) -> web.Response:
    raw = request.query.get("version", "")
    if not raw.isdigit():
        raise InvalidArgument(f"invalid service version {raw!r}")
    rollback = request.query.get("rollback") == "previous"
    warnings = await asyncio.to_thread(request.app[SERVICES].update, request.match_info["id"],
                                       int(raw), await _body(request), rollback)
    return web.json_response({"Warnings": warnings or None})


async def service_delete(request: web.Request) -> web.Response:
    await asyncio.to_thread(request.app[SERVICES].remove, request.match_info["id"])
    return web.Response(status=200)


async def service_logs(request: web.Request) -> web.StreamResponse:
    api = request.app[SERVICES]
    options = LogOptions(follow=_flag(request, "follow"), stdout=_flag(request, "stdout"),
                         stderr=_flag(request, "stderr"),
                         timestamps=_flag(request, "timestamps"),
                         since=request.query.get("since", ""), tail=request.query.get("tail")
                         or "all")
    if not (options.stdout or options.stderr):
        raise InvalidArgument("Bad parameters: you must choose at least one stream")
    chunks = await asyncio.to_thread(api.logs, request.match_info["id"], options)
    resp = web.StreamResponse(status=200, headers={"Content-Type": streams.MULTIPLEXED})
    await resp.prepare(request)
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[Any] = asyncio.Queue(maxsize=1024)
    gone = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks:
                if gone.is_set():
                    return
                asyncio.run_coroutine_threadsafe(q.put(chunk), loop).result()
        finally:
            asyncio.run_coroutine_threadsafe(q.put(None), loop).result()

    worker = loop.run_in_executor(None, produce)
    try:
        while (chunk := await q.get()) is not None:
            await resp.write(streams.frame(chunk.stream, chunk.data))
    except (ConnectionError, asyncio.CancelledError):
        gone.set()
        with contextlib.suppress(asyncio.QueueEmpty):
            while True:
                q.get_nowait()
        raise
    await worker
    await resp.write_eof()
    return resp


async def tasks(request: web.Request) -> web.Response:
    return web.json_response(await asyncio.to_thread(request.app[SERVICES].tasks,
                                                     _filters(request)))


async def task(request: web.Request) -> web.Response:
    found = await asyncio.to_thread(request.app[SERVICES].tasks, {"id": [request.match_info["id"]]})
    if len(found) != 1:
        return web.json_response({"message": f"task {request.match_info['id']} not found"},
                                 status=404)
    return web.json_response(found[0])


def add_routes(app: web.Application, swarm: SwarmAPI, services_api: ServicesAPI) -> None:
    app[SWARM] = swarm
    app[SERVICES] = services_api
    for method, path, handler in [
            ("POST", "/swarm/init", swarm_init), ("GET", "/swarm", swarm_inspect),
            ("POST", "/swarm/leave", swarm_leave), ("GET", "/nodes", nodes),
            ("GET", "/nodes/{id}", node), ("POST", "/nodes/{id}/update", node_update),
            ("GET", "/services", services),
            ("POST", "/services/create", service_create),
            ("GET", "/services/{id}", service_inspect),
            ("POST", "/services/{id}/update", service_update),
            ("DELETE", "/services/{id}", service_delete),
            ("GET", "/services/{id}/logs", service_logs), ("GET", "/tasks", tasks),
            ("GET", "/tasks/{id}", task)]:
        app.router.add_route(method, path, handler)
        app.router.add_route(method, r"/v{version:\d+\.\d+}" + path, handler)
