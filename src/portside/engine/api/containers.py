"""Handlers of `/containers/...` (Docker Engine API): thin, they call the Engine."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from typing import Any

from aiohttp import web

from portside.engine import disk, query
from portside.engine.api import streams
from portside.engine.containers import Engine
from portside.errors import InvalidArgument, PortsideError


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


def _list_filters(engine: Engine, filters: dict[str, list[str]]
                  ) -> tuple[dict[str, list[str]], float, float]:
    """Check the keys; networks given by id become names; `before` and `since` (container
    names or ids) become the bounds of the creation time."""
    from portside.engine.state import parse_rfc3339

    for key in filters:
        if key not in query.LIST_FILTERS:
            raise InvalidArgument(f"invalid filter '{key}'")
    if "network" in filters:
        names = set(filters["network"])
        for ref in filters["network"]:
            with contextlib.suppress(PortsideError):
                names.add(engine.networks.manager.get(ref).name)
        filters = {**filters, "network": sorted(names)}
    before = min((parse_rfc3339(engine.get(r).created) for r in filters.get("before", [])),
                 default=float("inf"))
    since = max((parse_rfc3339(engine.get(r).created) for r in filters.get("since", [])),
                default=float("-inf"))
    return filters, before, since


async def list_containers(request: web.Request) -> web.Response:
    from portside.engine.state import parse_rfc3339

    engine = engine_of(request)
    filters, before, since = _list_filters(
        engine, query.normalise_filters(request.query.get("filters")))
    show_all = flag(request, "all") or "before" in filters or "since" in filters
    out = []
    for c in engine.state.all():
        if not show_all and not c.running and "status" not in filters:
            continue
        if not since < parse_rfc3339(c.created) < before:
            continue
        if query.matches(c, filters):
            settings = engine.networks.settings(c) if c.running else None
            out.append(query.summary(c, engine.networks.ports(c),
                                     (settings or {}).get("Networks")))
    limit = int(request.query.get("limit") or -1)
    if limit > 0:
        out = out[:limit]
    if flag(request, "size"):  # `docker ps -s`
        for doc in out:
            doc.update(await asyncio.to_thread(disk.container_sizes, engine,
                                               engine.get(doc["Id"])))
    return web.json_response(out)


async def inspect(request: web.Request) -> web.Response:
    engine = engine_of(request)
    c = engine.get(request.match_info["id"])
    settings = await asyncio.to_thread(engine.networks.settings, c)
    doc = query.inspect(c, str(engine.log_path(c.id)), settings)
    # Docker lists the container's exec instances that have not exited (it drops an
    # exec from the container at its exit; /exec/{id}/json still answers for it)
    doc["ExecIDs"] = [i for i, e in engine.execs.items()
                      if e["ContainerID"] == c.id and e["ExitCode"] is None] or None
    if flag(request, "size"):
        doc.update(await asyncio.to_thread(disk.container_sizes, engine, c))
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
    from portside.engine.options import parse_time_or_duration
    from portside.runtime import read_logs

    engine = engine_of(request)
    c = engine.get(request.match_info["id"])
    want_out, want_err = flag(request, "stdout"), flag(request, "stderr")
    if not (want_out or want_err):
        raise InvalidArgument("you must choose at least one stream")
    follow, stamps = flag(request, "follow"), flag(request, "timestamps")
    now = time.time()
    since = float(request.query.get("since") or 0) or None
    until_text = request.query.get("until")
    until = parse_time_or_duration(until_text, now) if until_text else None
    tail_text = request.query.get("tail") or "all"
    tail = None if tail_text == "all" else int(tail_text)
    tty = bool(c.config.get("Tty"))
    resp = web.StreamResponse(status=200, headers={
        "Content-Type": streams.RAW if tty else streams.MULTIPLEXED})
    await resp.prepare(request)
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[Any] = asyncio.Queue(maxsize=1024)
    gone = threading.Event()

    def stop() -> bool:
        if gone.is_set():
            return True
        try:
            return not engine.get(c.id).running
        except Exception:  # noqa: BLE001 - removed: stop following
            return True

    def produce() -> None:
        try:
            for entry in read_logs(engine.log_path(c.id), since, until, tail, follow, stop):
                if gone.is_set():
                    break
                asyncio.run_coroutine_threadsafe(q.put(entry), loop).result()
        finally:
            asyncio.run_coroutine_threadsafe(q.put(None), loop).result()

    worker = loop.run_in_executor(None, produce)
    try:
        while (entry := await q.get()) is not None:
            stream = streams.STDERR if entry.stream == "stderr" else streams.STDOUT
            if (stream == streams.STDOUT and not want_out) or (
                    stream == streams.STDERR and not want_err):
                continue
            data = (entry.timestamp.encode() + b" " + entry.data) if stamps else entry.data
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
    want_out, want_err = flag(request, "stdout"), flag(request, "stderr")
    if not flag(request, "stream") and not flag(request, "logs"):
        raise InvalidArgument("at least one of stream or logs must be set")
    out = streams.Hijacked(request, tty)
    await out.open()
    if flag(request, "logs"):
        from portside.runtime import read_logs

        entries = await asyncio.to_thread(lambda: list(read_logs(engine.log_path(c.id))))
        for e in entries:
            stream = streams.STDERR if e.stream == "stderr" else streams.STDOUT
            if (stream == streams.STDOUT and want_out) or (stream == streams.STDERR and want_err):
                await out.write(stream, e.data)
    if flag(request, "stream"):
        try:
            sock = await engine.attach_socket(c.id)
        except (PortsideError, OSError, asyncio.CancelledError):
            await out.close()
            return out.resp or web.Response(status=200)
        tasks = [asyncio.ensure_future(streams.pump_attach(sock, out, want_out, want_err))]
        if want_in:
            tasks.append(asyncio.ensure_future(streams.pump_stdin(out.stdin, sock)))
        try:
            await tasks[0]
        finally:
            for t in tasks[1:]:
                t.cancel()
            sock.close()
    await out.close()
    return out.resp or web.Response(status=200)


async def resize(request: web.Request) -> web.Response:
    engine = engine_of(request)
    c = engine.get(request.match_info["id"])
    h, w = int(request.query.get("h") or 0), int(request.query.get("w") or 0)
    if c.running and h and w:
        await asyncio.to_thread(engine.runtime.resize, c.id, h, w)
    return web.Response(status=200)


async def top(request: web.Request) -> web.Response:
    from portside.engine.metrics import top_table

    engine = engine_of(request)
    c = engine.get(request.match_info["id"])
    if not c.running:
        from portside.engine.containers import NotRunning

        raise NotRunning(c)
    return web.json_response(await asyncio.to_thread(top_table, engine, c))


async def stats(request: web.Request) -> web.StreamResponse:
    from portside.engine.metrics import docker_stats

    engine = engine_of(request)
    c = engine.get(request.match_info["id"])
    stream = flag(request, "stream", True)
    one_shot = flag(request, "one-shot")
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    prev = None if one_shot else await asyncio.to_thread(docker_stats, engine, c, None)
    while True:
        if not one_shot:
            await asyncio.sleep(1.0 if stream else 0.5)
        doc = await asyncio.to_thread(docker_stats, engine, engine.get(c.id), prev)
        await resp.write(json.dumps(doc).encode() + b"\n")
        prev = doc
        if not stream or not engine.get(c.id).running:
            break
    await resp.write_eof()
    return resp


async def changes(request: web.Request) -> web.Response:
    from portside.engine import commit as commit_mod

    engine = engine_of(request)
    c = engine.get(request.match_info["id"])
    return web.json_response(await asyncio.to_thread(commit_mod.changes, engine, c) or None)


async def commit(request: web.Request) -> web.Response:
    from portside.engine import commit as commit_mod
    from portside.engine.imageimport import apply_changes

    engine = engine_of(request)
    c = engine.get(request.query.get("container", ""))
    repo, tag = request.query.get("repo") or "", request.query.get("tag") or ""
    name = f"{repo}:{tag}" if repo and tag else repo or None
    body = await body_json(request)
    changes = list(request.query.getall("changes", ()))
    apply_changes({}, changes)  # a bad instruction is a 400 before anything is written
    paused = False
    if c.running and flag(request, "pause", True) and not c.state["Paused"]:
        await engine.pause(c.id)
        paused = True
    try:
        image_id = await asyncio.to_thread(
            commit_mod.commit, engine, c, name, request.query.get("comment") or "",
            request.query.get("author") or "", body or None, changes)
    finally:
        if paused:
            await engine.unpause(c.id)
    engine.event(c, "commit")
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
