"""`/containers/{id}/archive` (GET, HEAD, PUT: what `docker cp` uses) and `/export`.

The work is in `engine.archive` on descriptors of the container's root (`engine.rootfs`);
these handlers pick the root, hold the container's lock while it is not running (so no
start mounts its rw layer meanwhile), and stream tars between a worker thread and the
socket.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import IO, Any, cast

from aiohttp import web

from portside.engine import archive, rootfs
from portside.engine.api.containers import engine_of, flag
from portside.engine.containers import Engine
from portside.engine.state import Container
from portside.errors import InvalidArgument

TAR = "application/x-tar"
Emit = Callable[[bytes], None]


def _path(request: web.Request) -> str:
    path = request.query.get("path")
    if not path:
        raise InvalidArgument("bad parameter: path cannot be empty")
    return path


@contextlib.asynccontextmanager
async def _quiet(engine: Engine, ref: str) -> AsyncIterator[Container]:
    """The container, under its lock unless it runs (a running one is reached through
    its own mount namespace and needs no lock)."""
    c = engine.get(ref)
    if c.running:
        yield c
        return
    async with engine.lock(c.id):
        yield engine.get(c.id)


async def stat_path(request: web.Request) -> web.Response:
    engine = engine_of(request)
    path = _path(request)
    async with _quiet(engine, request.match_info["id"]) as c:
        def work() -> dict[str, Any]:
            with rootfs.open_root(engine, c) as root:
                return archive.path_stat(root, path, c.name)

        doc = await asyncio.to_thread(work)
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
    async with _quiet(engine, request.match_info["id"]) as c:
        def produce(start: Callable[[dict[str, str]], None], emit: Emit) -> None:
            with rootfs.open_root(engine, c) as root:  # one root for the stat and the tar
                doc = archive.path_stat(root, path, c.name)
                start({archive.STAT_HEADER: archive.encode_stat(doc)})
                archive.write_path(root, path, c.name, emit)

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
    async with _quiet(engine, request.match_info["id"]) as c:
        writable = None
        if c.host_config.get("ReadonlyRootfs") and not c.running:
            # A running one says so itself (its root is mounted read-only); a stopped
            # one's helper mount is writable, so only its rw mounts may be written.
            rw = [m["Destination"].rstrip("/") for m in c.mounts if m.get("RW", True)]

            def writable(resolved: str) -> bool:
                return any(resolved == d or resolved.startswith(d + "/") for d in rw)

        def work() -> None:
            with rootfs.open_root(engine, c) as root:
                archive.extract(root, path, c.name, cast(IO[bytes], body), copy_owner,
                                no_overwrite, writable)

        await asyncio.to_thread(work)
    engine.event(c, "extract-to-dir")
    return web.Response(status=200)


async def export(request: web.Request) -> web.StreamResponse:
    engine = engine_of(request)
    async with _quiet(engine, request.match_info["id"]) as c:
        def produce(start: Callable[[dict[str, str]], None], emit: Emit) -> None:
            with rootfs.open_root(engine, c, volumes=False) as root:
                archive.write_tree(root, emit)

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
