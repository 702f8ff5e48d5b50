"""`/containers/{id}/archive` (GET, HEAD, PUT: what `docker cp` uses) and `/export`.

The work is `engine.copying` (shared with the in-process engine: the container held under
its lock while it is not running, the tar made or extracted on its root); these handlers
stream tars between a worker thread and the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import IO, Any, cast

from aiohttp import web

from portside.engine import archive, copying
from portside.engine.api.containers import engine_of, flag
from portside.errors import InvalidArgument

TAR = "application/x-tar"
Emit = Callable[[bytes], None]


def _path(request: web.Request) -> str:
    path = request.query.get("path")
    if not path:
        raise InvalidArgument("bad parameter: path cannot be empty")
    return path


async def stat_path(request: web.Request) -> web.Response:
    engine = engine_of(request)
    path = _path(request)
    async with copying.quiet(engine, request.match_info["id"]) as c:
        doc = await asyncio.to_thread(copying.stat, engine, c, path)
    return web.Response(status=200, headers={archive.STAT_HEADER: archive.encode_stat(doc),
                                             "Content-Type": TAR})


async def _stream(request: web.Request, headers: dict[str, str],
                  produce: Callable[[Callable[[dict[str, str]], None], Emit], None]
                  ) -> web.StreamResponse:
    """Run `produce(start, emit)` in a thread; `start(more_headers)` (optional, before the
    first `emit`) adds response headers, what it emits is the body. The response begins
    with the first chunk, so an error before it is a plain error response."""
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[bytes | dict[str, str] | BaseException | None] = asyncio.Queue(16)
    gone = False

    def put(item: bytes | dict[str, str] | BaseException | None) -> None:
        asyncio.run_coroutine_threadsafe(q.put(item), loop).result()

    def emit(chunk: bytes) -> None:
        if gone:
            raise ConnectionError("the client went away")
        put(chunk)

    def run() -> None:
        try:
            produce(put, emit)
        except BaseException as exc:  # noqa: BLE001 - handed to the event loop
            put(exc)
            return
        put(None)

    worker = loop.run_in_executor(None, run)
    resp: web.StreamResponse | None = None
    try:
        while True:
            item = await q.get()
            if isinstance(item, BaseException):
                if resp is None:
                    raise item
                break  # mid-stream: the client sees a truncated tar
            if isinstance(item, dict):
                headers = {**headers, **item}
                continue
            if resp is None:
                resp = web.StreamResponse(status=200, headers=headers)
                await resp.prepare(request)
            if item is None:
                break
            await resp.write(item)
    except (ConnectionError, asyncio.CancelledError):
        gone = True
        while not worker.done():
            with contextlib.suppress(asyncio.QueueEmpty):
                q.get_nowait()
            await asyncio.sleep(0.01)
        raise
    await worker
    if resp is None:
        resp = web.StreamResponse(status=200, headers=headers)
        await resp.prepare(request)
    await resp.write_eof()
    return resp


async def get_archive(request: web.Request) -> web.StreamResponse:
    engine = engine_of(request)
    path = _path(request)
    async with copying.quiet(engine, request.match_info["id"]) as c:
        def produce(start: Callable[[dict[str, str]], None], emit: Emit) -> None:
            copying.read(engine, c, path,
                         lambda doc: start({archive.STAT_HEADER: archive.encode_stat(doc)}),
                         emit)

        resp = await _stream(request, {"Content-Type": TAR}, produce)
    engine.event(c, "archive-path")
    return resp


class _Body:
    """The request body as a blocking file object, for the extractor's thread."""

    def __init__(self, request: web.Request, loop: asyncio.AbstractEventLoop) -> None:
        self.content = request.content
        self.loop = loop

    def read(self, n: int = -1) -> bytes:
        size = n if n > 0 else 1 << 20
        data: bytes = asyncio.run_coroutine_threadsafe(self.content.read(size), self.loop).result()
        return data


async def put_archive(request: web.Request) -> web.Response:
    engine = engine_of(request)
    path = _path(request)
    copy_owner = flag(request, "copyUIDGID")
    no_overwrite = flag(request, "noOverwriteDirNonDir")
    body = _Body(request, asyncio.get_running_loop())
    async with copying.quiet(engine, request.match_info["id"]) as c:
        await asyncio.to_thread(copying.write, engine, c, path, cast(IO[bytes], body),
                                copy_owner, no_overwrite)
    engine.event(c, "extract-to-dir")
    return web.Response(status=200)


async def export(request: web.Request) -> web.StreamResponse:
    engine = engine_of(request)
    async with copying.quiet(engine, request.match_info["id"]) as c:
        def produce(start: Callable[[dict[str, str]], None], emit: Emit) -> None:
            copying.export(engine, c, emit)

        resp = await _stream(request, {"Content-Type": TAR}, produce)
    engine.event(c, "export")
    return resp


def routes() -> list[tuple[str, str, Any]]:
    return [
        ("HEAD", "/containers/{id}/archive", stat_path),
        ("GET", "/containers/{id}/archive", get_archive),
        ("PUT", "/containers/{id}/archive", put_archive),
        ("GET", "/containers/{id}/export", export),
    ]
