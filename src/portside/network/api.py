"""Docker Engine API endpoints for networks: `/networks` list, inspect, create, connect,
disconnect, prune and DELETE, as aiohttp routes the daemon adds with `add_routes`.

Handlers are thin: they parse Docker's request, call the NetworkManager in a worker
thread (it runs netavark) and answer Docker's shapes. Connecting a container needs the
engine's view of it, given as `lookup(ref) -> ContainerRef`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from portside.errors import Conflict, PortsideError
from portside.network.docker import PSEUDO, PSEUDO_IDS, network_doc, parse_ipam, pseudo_doc
from portside.network.errors import InvalidNetworkArgument, NetworkNotFound, PredefinedNetwork
from portside.network.manager import NetworkManager
from portside.network.store import Network


@dataclass
class ContainerRef:
    """What connect/disconnect need of a container (the engine resolves names and ids)."""

    id: str
    name: str
    hostname: str
    netns: str | None  # the namespace path while it runs; None when it does not
    files_dir: Path | None = None  # where its hosts/resolv.conf live, to refresh them
    # Records a connect (the endpoint config) or a disconnect (None) with the container,
    # so its next start has the same networks, as in Docker; with it, a container that is
    # not running can be connected (recorded only).
    remember: Callable[[str, dict[str, Any] | None], None] | None = None


Lookup = Callable[[str], ContainerRef]
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
    """Errors as Docker's `{"message"}` bodies, whatever middleware the app has."""
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except PortsideError as exc:
            return web.json_response({"message": str(exc)}, status=exc.http_status)
        except (ValueError, json.JSONDecodeError) as exc:
            return web.json_response({"message": f"invalid parameter: {exc}"}, status=400)
    return wrapped


def _manager(request: web.Request) -> NetworkManager:
    return request.app[MANAGER]


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    doc = json.loads(raw)
    if not isinstance(doc, dict):
        raise InvalidNetworkArgument("request body must be a JSON object")
    return doc


def _filters(request: web.Request) -> dict[str, list[str]]:
    raw = request.query.get("filters") or ""
    if not raw:
        return {}
    doc = json.loads(raw)
    # both {"name": ["x"]} and the old {"name": {"x": true}} forms
    return {k: list(v) if isinstance(v, list) else [n for n, on in v.items() if on]
            for k, v in doc.items()}


def _labels_match(labels: dict[str, str], wanted: list[str]) -> bool:
    for item in wanted:
        key, eq, value = item.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


def _matches(doc: dict[str, Any], filters: dict[str, list[str]], builtin: bool,
             dangling: bool) -> bool:
    for key, wanted in filters.items():
        if key == "name" and not any(w in doc["Name"] for w in wanted):
            return False
        if key == "id" and not any(doc["Id"].startswith(w) for w in wanted):
            return False
        if key == "driver" and doc["Driver"] not in wanted:
            return False
        if key == "label" and not _labels_match(doc["Labels"], wanted):
            return False
        if key == "type" and ("builtin" if builtin else "custom") not in wanted:
            return False
        if key == "dangling" and (("true" in wanted or "1" in wanted) != dangling):
            return False
    return True


async def list_networks(request: web.Request) -> web.Response:
    m = _manager(request)
    filters = _filters(request)
    nets = await asyncio.to_thread(m.networks)
    out = []
    for net in nets:
        eps = await asyncio.to_thread(m.store.attachments, network_id=net.id)
        doc = network_doc(net, eps)
        if _matches(doc, filters, net.name == "bridge", not eps):
            out.append(doc)
    out += [d for d in (pseudo_doc(n) for n in PSEUDO) if _matches(d, filters, True, True)]
    return web.json_response(out)


def _find(m: NetworkManager, ref: str) -> Network | str:
    """A network record, or the name of a pseudo network (host, none)."""
    for name, nid in PSEUDO_IDS.items():
        if ref in (name, nid):
            return name
    return m.get(ref)


async def inspect_network(request: web.Request) -> web.Response:
    m = _manager(request)
    found = await asyncio.to_thread(_find, m, request.match_info["id"])
    if isinstance(found, str):
        return web.json_response(pseudo_doc(found))
    eps = await asyncio.to_thread(m.store.attachments, network_id=found.id)
    return web.json_response(network_doc(found, eps))


async def create_network(request: web.Request) -> web.Response:
    m = _manager(request)
    body = await _body(request)
    name = body.get("Name") or ""
    if not name:
        raise InvalidNetworkArgument("network name is required")
    if body.get("EnableIPv6"):
        raise InvalidNetworkArgument("IPv6 networks are not supported")
    subnet, gateway = parse_ipam(body)
    if name in PSEUDO:
        raise InvalidNetworkArgument(f"network name {name} is reserved")
    net = await asyncio.to_thread(
        m.create, name, subnet=subnet, gateway=gateway, internal=bool(body.get("Internal")),
        labels=dict(body.get("Labels") or {}), options=dict(body.get("Options") or {}),
        driver=body.get("Driver") or "bridge")
    return web.json_response({"Id": net.id, "Warning": ""}, status=201)


async def delete_network(request: web.Request) -> web.Response:
    m = _manager(request)
    ref = request.match_info["id"]
    if ref in PSEUDO or ref in PSEUDO_IDS.values():
        raise PredefinedNetwork(ref)
    await asyncio.to_thread(m.remove, ref)
    return web.Response(status=204)


def _lookup(request: web.Request, ref: str) -> ContainerRef:
    lookup = request.app[LOOKUP]
    if lookup is None:
        raise Conflict("connecting containers needs the engine (no container lookup given)")
    result: ContainerRef = lookup(ref)  # type: ignore[operator]
    return result


async def connect(request: web.Request) -> web.Response:
    m = _manager(request)
    body = await _body(request)
    net = await asyncio.to_thread(_find, m, request.match_info["id"])
    if isinstance(net, str):
        raise InvalidNetworkArgument(f"container cannot be connected to network {net}")
    ref = await asyncio.to_thread(_lookup, request, str(body.get("Container") or ""))
    cfg = body.get("EndpointConfig") or {}
    if not ref.netns:
        if ref.remember is None:
            raise Conflict(f"container {ref.name} is not running: give --network at create")
        ref.remember(net.name, cfg)
        return web.Response(status=200)
    ip = (cfg.get("IPAMConfig") or {}).get("IPv4Address") or None
    await asyncio.to_thread(
        m.attach, ref.id, ref.netns, net.name, aliases=list(cfg.get("Aliases") or []), ip=ip,
        hostname=ref.hostname, container_name=ref.name)
    if ref.remember is not None:
        ref.remember(net.name, cfg)
    if ref.files_dir is not None:
        await asyncio.to_thread(_refresh_files, m, ref)
    return web.Response(status=200)


async def disconnect(request: web.Request) -> web.Response:
    m = _manager(request)
    body = await _body(request)
    net = await asyncio.to_thread(_find, m, request.match_info["id"])
    if isinstance(net, str):
        raise NetworkNotFound(net)
    ref = await asyncio.to_thread(_lookup, request, str(body.get("Container") or ""))
    if ref.netns or ref.remember is None:
        await asyncio.to_thread(m.detach, ref.id, ref.netns, net.name)
    if ref.remember is not None:
        ref.remember(net.name, None)
    if ref.files_dir is not None:
        await asyncio.to_thread(_refresh_files, m, ref)
    return web.Response(status=200)


def _refresh_files(m: NetworkManager, ref: ContainerRef) -> None:
    """Rewrite resolv.conf in place (it is bind-mounted: the inode must stay), with the
    container's --dns, --dns-search and --dns-option as given at its start."""
    from portside.network.files import resolv_conf

    assert ref.files_dir is not None
    path = ref.files_dir / "resolv.conf"
    asked = m.resolvers.settings(ref.id)
    if path.exists():
        with open(path, "r+") as f:
            f.truncate(0)
            f.write(resolv_conf(m.attachments(ref.id), asked.servers, asked.search,
                                asked.options))


async def prune(request: web.Request) -> web.Response:
    m = _manager(request)
    filters = _filters(request)
    labels = dict(item.partition("=")[::2] for item in filters.get("label", []))
    removed = await asyncio.to_thread(m.prune, labels or None)
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
