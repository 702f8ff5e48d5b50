"""Handlers of `/containers/...` (Docker Engine API): thin, they call the Engine."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from typing import Any

from aiohttp import web

from portside.engine import detachkeys, operations, query
from portside.engine import streams as engine_streams
from portside.engine.api import streams
from portside.engine.containers import Engine
from portside.errors import InvalidArgument


def engine_of(request: web.Request) -> Engine:
    engine: Engine = request.app["engine"]
    return engine


def flag(request: web.Request, name: str, default: bool = False) -> bool:
    value = request.query.get(name)
    if value is None:
        return default
    return value.lower() not in ("0", "false", "no", "")


async def body_json(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise InvalidArgument(f"invalid JSON body: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid JSON body: expected an object")
    return doc


async def create(request: web.Request) -> web.Response:
    engine = engine_of(request)
    body = await body_json(request)
    c = await asyncio.to_thread(engine.create, body, request.query.get("name", ""))
    return web.json_response({"Id": c.id, "Warnings": []}, status=201)


async def list_containers(request: web.Request) -> web.Response:
    engine = engine_of(request)
    filters = query.normalise_filters(request.query.get("filters"))
    out = operations.container_list(engine, filters, flag(request, "all"),
                                    int(request.query.get("limit") or -1))
    if flag(request, "size"):  # `docker ps -s`
        await asyncio.to_thread(operations.add_sizes, engine, out)
    return web.json_response(out)


async def inspect(request: web.Request) -> web.Response:
    engine = engine_of(request)
    c = engine.get(request.match_info["id"])
    doc = await asyncio.to_thread(operations.container_inspect, engine, c, flag(request, "size"))
    return web.json_response(doc)


async def start(request: web.Request) -> web.Response:
    started = await engine_of(request).start(request.match_info["id"])
    return web.Response(status=204 if started else 304)


def _timeout(request: web.Request) -> int | None:
    t = request.query.get("t") or request.query.get("timeout")
    if t is None or t == "":
        return None
    try:
        return int(t)
    except ValueError:
        raise InvalidArgument(f"invalid timeout {t!r}") from None


async def stop(request: web.Request) -> web.Response:
    stopped = await engine_of(request).stop(request.match_info["id"], _timeout(request),
                                            request.query.get("signal") or None)
    return web.Response(status=204 if stopped else 304)


async def kill(request: web.Request) -> web.Response:
    await engine_of(request).kill(request.match_info["id"],
                                  request.query.get("signal") or "SIGKILL")
    return web.Response(status=204)


async def restart(request: web.Request) -> web.Response:
    await engine_of(request).restart(request.match_info["id"], _timeout(request))
    return web.Response(status=204)


async def pause(request: web.Request) -> web.Response:
    await engine_of(request).pause(request.match_info["id"])
    return web.Response(status=204)


async def unpause(request: web.Request) -> web.Response:
    await engine_of(request).unpause(request.match_info["id"])
    return web.Response(status=204)


async def wait(request: web.Request) -> web.StreamResponse:
    """Headers go out at once (the client then starts the container), the body at exit."""
    engine = engine_of(request)
    fut = engine.register_wait(request.match_info["id"],
                               request.query.get("condition") or "not-running")
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    result = await fut
    with contextlib.suppress(ConnectionError):
        await resp.write(json.dumps(result).encode() + b"\n")
        await resp.write_eof()
    return resp


async def remove(request: web.Request) -> web.Response:
    await engine_of(request).remove(request.match_info["id"], flag(request, "force"),
                                    flag(request, "v"))
    return web.Response(status=204)


async def prune(request: web.Request) -> web.Response:
    filters = query.normalise_filters(request.query.get("filters"))
    return web.json_response(await engine_of(request).prune(filters))


async def logs(request: web.Request) -> web.StreamResponse:
    engine = engine_of(request)
    c = engine.get(request.match_info["id"])
    want_out, want_err = flag(request, "stdout"), flag(request, "stderr")
    operations.check_log_streams(want_out, want_err)
    follow, stamps = flag(request, "follow"), flag(request, "timestamps")
    since, until, tail = operations.log_window(request.query.get("since"),
                                               request.query.get("until"),
                                               request.query.get("tail"))
    tty = bool(c.config.get("Tty"))
    resp = web.StreamResponse(status=200, headers={
        "Content-Type": streams.RAW if tty else streams.MULTIPLEXED})
    await resp.prepare(request)
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[Any] = asyncio.Queue(maxsize=1024)
    gone = threading.Event()

    def produce() -> None:
        try:
            for chunk in operations.log_chunks(
                    engine, c, stdout=want_out, stderr=want_err, timestamps=stamps,
                    since=since, until=until, tail=tail, follow=follow, gone=gone):
                asyncio.run_coroutine_threadsafe(q.put(chunk), loop).result()
        finally:
            asyncio.run_coroutine_threadsafe(q.put(None), loop).result()

    worker = loop.run_in_executor(None, produce)
    try:
        while (chunk := await q.get()) is not None:
            stream, data = chunk
            await resp.write(data if tty else streams.frame(stream, data))
    except (ConnectionError, asyncio.CancelledError):
        gone.set()
        while not worker.done():
            with contextlib.suppress(asyncio.QueueEmpty):
                q.get_nowait()
            await asyncio.sleep(0.01)
        raise
    gone.set()
    await worker
    await resp.write_eof()
    return resp


async def attach(request: web.Request) -> web.StreamResponse:
    engine = engine_of(request)
    c = engine.get(request.match_info["id"])
    tty = bool(c.config.get("Tty"))
    want_in = flag(request, "stdin") and bool(c.config.get("OpenStdin"))
    if not flag(request, "stream") and not flag(request, "logs"):
        raise InvalidArgument("at least one of stream or logs must be set")
    keys = detachkeys.for_stream(tty, want_in, request.query.get("detachKeys"))
    out = streams.Hijacked(request, tty)
    await out.open()
    await engine_streams.attach(engine, c, out, logs=flag(request, "logs"),
                                stream=flag(request, "stream"), want_in=want_in,
                                want_out=flag(request, "stdout"),
                                want_err=flag(request, "stderr"), detach_keys=keys)
    await out.close()
    return out.resp or web.Response(status=200)


async def resize(request: web.Request) -> web.Response:
    engine = engine_of(request)
    engine.get(request.match_info["id"])
    h, w = int(request.query.get("h") or 0), int(request.query.get("w") or 0)
    await asyncio.to_thread(operations.resize, engine, request.match_info["id"], h, w)
    return web.Response(status=200)


async def top(request: web.Request) -> web.Response:
    engine = engine_of(request)
    c = engine.get(request.match_info["id"])
    return web.json_response(await asyncio.to_thread(operations.top, engine, c))


async def stats(request: web.Request) -> web.StreamResponse:
    engine = engine_of(request)
    c = engine.get(request.match_info["id"])
    stream = flag(request, "stream", True)
    one_shot = flag(request, "one-shot")
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    async for doc in operations.stats(engine, c, stream, one_shot):
        await resp.write(json.dumps(doc).encode() + b"\n")
    await resp.write_eof()
    return resp


async def changes(request: web.Request) -> web.Response:
    from portside.engine import commit as commit_mod

    engine = engine_of(request)
    c = engine.get(request.match_info["id"])
    return web.json_response(await asyncio.to_thread(commit_mod.changes, engine, c) or None)


async def commit(request: web.Request) -> web.Response:
    engine = engine_of(request)
    ref = request.query.get("container", "")
    engine.get(ref)  # an unknown container before a bad body
    repo, tag = request.query.get("repo") or "", request.query.get("tag") or ""
    name = f"{repo}:{tag}" if repo and tag else repo or None
    body = await body_json(request)
    image_id = await operations.commit(engine, ref, name, request.query.get("comment") or "",
                                       request.query.get("author") or "", body or None,
                                       flag(request, "pause", True),
                                       list(request.query.getall("changes", ())))
    return web.json_response({"Id": image_id}, status=201)


def routes() -> list[tuple[str, str, Any]]:
    return [
        ("POST", "/containers/create", create),
        ("GET", "/containers/json", list_containers),
        ("POST", "/containers/prune", prune),
        ("GET", "/containers/{id}/json", inspect),
        ("POST", "/containers/{id}/start", start),
        ("POST", "/containers/{id}/stop", stop),
        ("POST", "/containers/{id}/kill", kill),
        ("POST", "/containers/{id}/restart", restart),
        ("POST", "/containers/{id}/pause", pause),
        ("POST", "/containers/{id}/unpause", unpause),
        ("POST", "/containers/{id}/wait", wait),
        ("DELETE", "/containers/{id}", remove),
        ("GET", "/containers/{id}/logs", logs),
        ("POST", "/containers/{id}/attach", attach),
        ("POST", "/containers/{id}/resize", resize),
        ("GET", "/containers/{id}/top", top),
        ("GET", "/containers/{id}/stats", stats),
        ("GET", "/containers/{id}/changes", changes),
        ("POST", "/commit", commit),
    ]
