"""System, image and volume handlers: `_ping`, `version`, `info`, `events`, `/images`, `/volumes`."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import time
from typing import Any

from aiohttp import web

from portside import __version__
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


def _version_doc() -> dict[str, Any]:
    from portside.oci.model import host_platform

    uname = platform.uname()
    return {
        "Platform": {"Name": "portside"},
        "Components": [{"Name": "Engine", "Version": __version__,
                        "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
                                    "Os": "linux", "Arch": host_platform().architecture}}],
        "Version": __version__, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "", "GoVersion": f"python{platform.python_version()}", "Os": "linux",
        "Arch": host_platform().architecture, "KernelVersion": uname.release,
        "BuildTime": "",
    }


async def version(request: web.Request) -> web.Response:
    return web.json_response(_version_doc())


async def info(request: web.Request) -> web.Response:
    engine = engine_of(request)
    containers = engine.state.all()
    running = sum(1 for c in containers if c.running and not c.state["Paused"])
    paused = sum(1 for c in containers if c.state["Paused"])
    uname = platform.uname()
    return web.json_response({
        "ID": "portside", "Containers": len(containers), "ContainersRunning": running,
        "ContainersPaused": paused, "ContainersStopped": len(containers) - running - paused,
        "Images": len(engine.images.list()), "Driver": "overlay",
        "DockerRootDir": str(engine.root), "Name": uname.node, "NCPU": os.cpu_count() or 1,
        "MemTotal": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "OperatingSystem": "portside", "OSType": "linux", "Architecture": uname.machine,
        "KernelVersion": uname.release, "ServerVersion": __version__,
        "DefaultRuntime": engine.default_runtime,
        "Runtimes": {"crun": {"path": "crun"}, "runc": {"path": "runc"}},
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1",
        "LoggingDriver": "json-file",  # conmon's k8s-file, named as inspect names it "SecurityOptions": ["name=seccomp,profile=builtin"],
        "Plugins": {"Volume": ["local"], "Network": ["host", "null"], "Log": ["json-file"]},
        "Warnings": None,
    })


async def events(request: web.Request) -> web.StreamResponse:
    from portside.engine.options import parse_time_or_duration

    engine = engine_of(request)
    now = time.time()
    since = request.query.get("since")
    until = request.query.get("until")
    since_t = parse_time_or_duration(since, now) if since else None
    until_t = parse_time_or_duration(until, now) if until else None
    filters = normalise_filters(request.query.get("filters"))
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    q = engine.events.subscribe()
    try:
        if since_t is not None:
            for e in engine.events.since(since_t):
                if until_t is not None and e["timeNano"] >= until_t * 1e9:
                    break
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
            if events_mod.matches(e, filters):
                await resp.write(json.dumps(e).encode() + b"\n")
    except ConnectionError:
        pass
    finally:
        engine.events.unsubscribe(q)
    await resp.write_eof()
    return resp


# -- images (read-only here; image work happens in `portside image ...`) --

def _image_summary(engine: Any, image: Any) -> dict[str, Any]:
    from portside.cli.output import parse_time

    cfg = engine.images.config(image)
    return {"Id": image.id, "ParentId": "", "RepoTags": [_familiar(t) for t in image.tags],
            "RepoDigests": [], "Created": int(parse_time(image.created) or 0),
            "Size": image.size, "SharedSize": -1, "VirtualSize": image.size,
            "Labels": cfg.config.get("Labels") or {},
            "Containers": len(engine.images.holders(image))}


def _familiar(tag: str) -> str:
    from portside.oci import reference as refs

    return refs.parse(tag).familiar()


async def list_images(request: web.Request) -> web.Response:
    engine = engine_of(request)
    return web.json_response([_image_summary(engine, i) for i in engine.images.list()])


async def inspect_image(request: web.Request) -> web.Response:
    engine = engine_of(request)
    image = engine._image(request.match_info["name"])  # noqa: SLF001 - Docker's 404 wording
    cfg = engine.images.config(image)
    raw = cfg.raw
    return web.json_response({
        "Id": image.id, "RepoTags": [_familiar(t) for t in image.tags], "RepoDigests": [],
        "Parent": "", "Comment": "", "Created": image.created, "Config": cfg.config,
        "Architecture": raw.get("architecture"), "Os": raw.get("os"), "Size": image.size,
        "RootFS": {"Type": "layers", "Layers": cfg.diff_ids},
        "GraphDriver": {"Name": "overlay", "Data": None}, "Metadata": {"LastTagTime": ""},
    })


async def pull_unsupported(request: web.Request) -> web.Response:
    name = request.query.get("fromImage", "")
    tag = request.query.get("tag", "")
    ref = f"{name}:{tag}" if tag else name
    return web.json_response({"message": f"pull access denied for {ref}: portside's daemon does"
                              " not pull; use `portside pull` or `portside image bootstrap`"},
                             status=404)


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
        ("GET", "/version", version), ("GET", "/info", info), ("GET", "/events", events),
        ("GET", "/images/json", list_images), ("GET", "/images/{name:.+}/json", inspect_image),
        ("POST", "/images/create", pull_unsupported),
        ("GET", "/volumes", list_volumes), ("POST", "/volumes/create", create_volume),
        ("POST", "/volumes/prune", prune_volumes),
        ("GET", "/volumes/{name}", inspect_volume), ("DELETE", "/volumes/{name}", remove_volume),
    ]
