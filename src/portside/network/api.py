"""Docker Engine API endpoints for networks: `/networks` list, inspect, create, connect,
disconnect, prune and DELETE, as aiohttp routes the daemon adds with `add_routes`.

Handlers are thin: they parse Docker's request and call `network.operations` (shared with
the in-process engine) in a worker thread (it runs netavark). Connecting a container needs
the engine's view of it, given as `lookup(ref) -> ContainerRef`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from portside.errors import PortsideError, to_wire
from portside.network import operations as ops
from portside.network.errors import InvalidNetworkArgument
from portside.network.manager import NetworkManager
from portside.network.operations import ContainerRef, Lookup

__all__ = ["ContainerRef", "Lookup", "add_routes"]

MANAGER = web.AppKey("network_manager", NetworkManager)
LOOKUP = web.AppKey("network_lookup", object)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_routes(app: web.Application, manager: NetworkManager,
               lookup: Lookup | None = None) -> None:
    """Register the /networks routes (plain and /v1.xx-prefixed) on the daemon's app."""
    app[MANAGER] = manager
    app[LOOKUP] = lookup
    for method, path, handler in ROUTES:
        wrapped = _docker_errors(handler)
        app.router.add_route(method, path, wrapped)
        app.router.add_route(method, r"/v{version:\d+\.\d+}" + path, wrapped)


def _docker_errors(handler: Handler) -> Handler:
    """Errors as Docker's `{"message"}` bodies, whatever middleware the app has, with the
    error's class and facts beside the message (`errors.to_wire`), so a portside client
    raises the class the network layer raised (`NetworkNotFound.ref`...)."""
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except PortsideError as exc:
            return web.json_response(to_wire(exc), status=exc.http_status)
        except (ValueError, json.JSONDecodeError) as exc:
            return web.json_response({"message": f"invalid parameter: {exc}"}, status=400)
    return wrapped


def _manager(request: web.Request) -> NetworkManager:
    return request.app[MANAGER]


def _lookup(request: web.Request) -> Lookup | None:
    lookup: Lookup | None = request.app[LOOKUP]  # type: ignore[assignment]
    return lookup


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    doc = json.loads(raw)
    if not isinstance(doc, dict):
        raise InvalidNetworkArgument("request body must be a JSON object")
    return doc


def parse_filters(raw: str | None) -> dict[str, list[str]]:
    if not raw:
        return {}
    doc = json.loads(raw)
    # both {"name": ["x"]} and the old {"name": {"x": true}} forms
    return {k: list(v) if isinstance(v, list) else [n for n, on in v.items() if on]
            for k, v in doc.items()}


def _filters(request: web.Request) -> dict[str, list[str]]:
    return parse_filters(request.query.get("filters") or "")


async def list_networks(request: web.Request) -> web.Response:
    docs = await asyncio.to_thread(ops.list_docs, _manager(request), _filters(request))
    return web.json_response(docs)


async def inspect_network(request: web.Request) -> web.Response:
    doc = await asyncio.to_thread(ops.inspect_doc, _manager(request), request.match_info["id"])
    return web.json_response(doc)


async def create_network(request: web.Request) -> web.Response:
    m = _manager(request)
    body = await _body(request)
    net = await asyncio.to_thread(ops.create, m, body)
    return web.json_response({"Id": net.id, "Warning": ""}, status=201)


async def delete_network(request: web.Request) -> web.Response:
    await asyncio.to_thread(ops.remove, _manager(request), request.match_info["id"])
    return web.Response(status=204)


async def connect(request: web.Request) -> web.Response:
    body = await _body(request)
    await asyncio.to_thread(ops.connect, _manager(request), _lookup(request),
                            request.match_info["id"], body)
    return web.Response(status=200)


async def disconnect(request: web.Request) -> web.Response:
    body = await _body(request)
    await asyncio.to_thread(ops.disconnect, _manager(request), _lookup(request),
                            request.match_info["id"], body)
    return web.Response(status=200)


async def prune(request: web.Request) -> web.Response:
    removed = await asyncio.to_thread(ops.prune, _manager(request), _filters(request))
    return web.json_response({"NetworksDeleted": removed})


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/networks", list_networks),
    ("POST", "/networks/create", create_network),
    ("POST", "/networks/prune", prune),
    ("GET", "/networks/{id}", inspect_network),
    ("DELETE", "/networks/{id}", delete_network),
    ("POST", "/networks/{id}/connect", connect),
    ("POST", "/networks/{id}/disconnect", disconnect),
]
