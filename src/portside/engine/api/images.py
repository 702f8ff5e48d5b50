"""Handlers of `/images/...` (Docker Engine API v1.43): thin, they call the ImageService.

Pull, push and import answer a JSON message stream as dockerd does: an error before the
first message is a plain error with its status (404 for a missing tag), an error after it
goes in the stream (`{"errorDetail": {"message": ...}, "error": ...}`) behind a 200. Load
reads the request body and save writes the response from a worker thread, through the
small file adapters below, a MiB at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import io
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from portside.engine.api.containers import engine_of, flag
from portside.engine.imageprogress import Emit, Message, error, status
from portside.engine.images import ImageService
from portside.engine.imagetypes import PruneFilters, RegistryAuth, label_matches
from portside.engine.options import parse_time_or_duration
from portside.engine.query import normalise_filters
from portside.errors import InvalidArgument, PortsideError
from portside.oci import reference as refs
from portside.store.describe import inspect as describe_image
from portside.store.images import Image
from portside.times import parse_time

log = logging.getLogger("portside.api")
JSON = "application/json"
CHUNK = 1 << 20


def service_of(request: web.Request) -> ImageService:
    return engine_of(request).image_service


# -- streams between the event loop and a worker thread --

class BodyReader(io.RawIOBase):
    """The request body as a blocking file, for a worker thread."""

    def __init__(self, request: web.Request, loop: asyncio.AbstractEventLoop) -> None:
        self.request, self.loop = request, loop

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        want = len(buffer)
        data = asyncio.run_coroutine_threadsafe(self.request.content.read(want), self.loop).result()
        buffer[:len(data)] = data
        return len(data)


class ResponseWriter(io.RawIOBase):
    """A streamed response as a blocking file, for a worker thread; the 200 is sent with
    the first bytes, so an error raised before them still gets its own status."""

    def __init__(self, request: web.Request, response: web.StreamResponse,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.request, self.response, self.loop = request, response, loop
        self.abandoned = False

    def writable(self) -> bool:
        return True

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    async def _send(self, data: bytes) -> None:
        if not self.response.prepared:
            await self.response.prepare(self.request)
        await self.response.write(data)

    def write(self, data: Any) -> int:
        size = len(data)
        # After a failure, or from the loop itself (a buffer flushed when it is collected),
        # bytes are dropped: waiting on the loop from the loop would hang it.
        if self.abandoned or self._on_loop():
            return size
        asyncio.run_coroutine_threadsafe(self._send(bytes(data)), self.loop).result()
        return size


def _line(msg: Message) -> bytes:
    return json.dumps(msg).encode() + b"\r\n"


async def progress_stream(request: web.Request,
                          work: Callable[[Emit], Any]) -> web.StreamResponse:
    """Run `work(emit)` in a worker thread and stream what it emits as dockerd does."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Message | None] = asyncio.Queue()

    def emit(msg: Message) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, msg)

    task = loop.run_in_executor(None, work, emit)
    task.add_done_callback(lambda _: queue.put_nowait(None))
    first = await queue.get()
    if first is None:
        task.result()  # an error before any message: its own status
    resp = web.StreamResponse(status=200, headers={"Content-Type": JSON})
    await resp.prepare(request)
    msg = first
    try:
        while msg is not None:
            await resp.write(_line(msg))
            msg = await queue.get()
        exc = task.exception()
        if exc is not None:
            if not isinstance(exc, PortsideError):
                log.error("%s %s failed", request.method, request.path, exc_info=exc)
            await resp.write(_line(error(str(exc))))
        await resp.write_eof()
    except ConnectionError:
        pass  # the client left; the work finishes on its own
    return resp


# -- listing and inspecting --

def _summary(service: ImageService, image: Image) -> dict[str, Any]:
    cfg = service.store.config(image)
    return {"Id": image.id, "ParentId": "", "RepoTags": [_familiar(t) for t in image.tags],
            "RepoDigests": _repo_digests(image), "Created": int(parse_time(image.created) or 0),
            "Size": image.size, "SharedSize": -1, "VirtualSize": image.size,
            "Labels": cfg.config.get("Labels") or {},
            "Containers": len(service.store.holders(image))}


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _familiar(tag: str) -> str:
    return refs.parse(tag).familiar()


def _repo_digests(image: Image) -> list[str]:
    digest = image.index_digest or image.manifest_digest
    return sorted({f"{refs.parse(t).familiar_repository}@{digest}" for t in image.tags})


def _listed(image: Image, labels: dict[str, str], filters: dict[str, list[str]]) -> bool:
    dangling = filters.get("dangling")
    if dangling and (dangling[0] in ("true", "1")) == bool(image.tags):
        return False
    if "reference" in filters:
        names = [refs.parse(t) for t in image.tags]
        if not any(fnmatch.fnmatch(n.familiar(), pattern)
                   or fnmatch.fnmatch(n.familiar_repository, pattern)
                   for n in names for pattern in filters["reference"]):
            return False
    return all(label_matches(labels, spec) for spec in filters.get("label", []))


async def list_images(request: web.Request) -> web.Response:
    service = service_of(request)
    filters = normalise_filters(request.query.get("filters"))

    def collect() -> list[dict[str, Any]]:
        with service.lock:
            out = []
            for image in service.store.list():
                doc = _summary(service, image)
                if _listed(image, doc["Labels"], filters):
                    out.append(doc)
            return out

    return web.json_response(await asyncio.to_thread(collect))


async def inspect_image(request: web.Request) -> web.Response:
    service = service_of(request)

    def describe() -> dict[str, Any]:
        with service.lock:
            image = service.get(request.match_info["name"])
            doc = describe_image(service.store, image)  # the one document, as the CLI shows it
        return {**doc, "Parent": "", "Comment": "",
                "GraphDriver": {"Name": "overlay", "Data": None},
                "Metadata": {"LastTagTime": _rfc3339(image.added)}}

    return web.json_response(await asyncio.to_thread(describe))


async def history(request: web.Request) -> web.Response:
    entries = await asyncio.to_thread(service_of(request).history, request.match_info["name"])
    return web.json_response([{"Id": e.id, "Created": e.created, "CreatedBy": e.created_by,
                               "Tags": e.tags, "Size": e.size, "Comment": e.comment}
                              for e in entries])


# -- pull, import, push --

def _pull_reference(image: str, tag: str) -> str:
    """dockerd's `fromImage` + `tag`: the tag replaces one in the name; it may be a digest."""
    if not tag:
        return image
    ref = refs.parse(image)
    return f"{ref.repository}@{tag}" if tag.startswith("sha256:") else f"{ref.repository}:{tag}"


async def create(request: web.Request) -> web.StreamResponse:
    """`POST /images/create`: pull (`fromImage`) or import a tarball body (`fromSrc=-`)."""
    service = service_of(request)
    q = request.query
    if "fromSrc" in q:
        if q["fromSrc"] != "-":
            raise InvalidArgument("importing from a URL is not supported: send the tarball"
                                  " as the request body (fromSrc=-)")
        reader = io.BufferedReader(BodyReader(request, asyncio.get_running_loop()), CHUNK)

        def import_(emit: Emit) -> None:
            image = service.import_tarball(reader, q.get("repo", ""), q.get("tag", ""),
                                           q.get("message", ""), list(q.getall("changes", ())))
            emit(status(image.id))

        return await progress_stream(request, import_)
    image = q.get("fromImage", "")
    if not image:
        raise InvalidArgument("fromImage or fromSrc is required")
    reference = _pull_reference(image, q.get("tag", ""))
    bare = refs.parse(reference)
    all_tags = not bare.tag and not bare.digest  # dockerd: no tag anywhere pulls every tag
    try:
        auth = RegistryAuth.decode(request.headers.get("X-Registry-Auth", ""))
    except InvalidArgument:
        auth = None  # dockerd: a pull with an unreadable auth config goes anonymous
    platform = q.get("platform", "")
    insecure = flag(request, "insecure")  # portside's own: `portside pull --insecure`
    return await progress_stream(
        request, lambda emit: service.pull(reference, auth, emit, platform, all_tags, insecure))


async def push(request: web.Request) -> web.StreamResponse:
    service = service_of(request)
    try:
        auth = RegistryAuth.decode(request.headers.get("X-Registry-Auth", ""))
    except InvalidArgument as exc:
        raise InvalidArgument(f"Bad parameters and missing X-Registry-Auth: {exc}") from None
    name, tag = request.match_info["name"], request.query.get("tag", "")
    insecure = flag(request, "insecure")  # portside's own: `portside push --insecure`
    return await progress_stream(request,
                                 lambda emit: service.push(name, tag, auth, emit, insecure))


# -- names --

async def tag(request: web.Request) -> web.Response:
    service = service_of(request)
    await asyncio.to_thread(service.tag, request.match_info["name"],
                            request.query.get("repo", ""), request.query.get("tag", ""))
    return web.Response(status=201)


async def remove(request: web.Request) -> web.Response:
    service = service_of(request)
    items = await asyncio.to_thread(service.remove, request.match_info["name"],
                                    flag(request, "force"), flag(request, "noprune"))
    return web.json_response([{kind: value} for kind, value in items])


def _prune_filters(raw: str | None) -> PruneFilters:
    filters = normalise_filters(raw)
    unknown = set(filters) - {"dangling", "until", "label", "label!"}
    if unknown:
        raise InvalidArgument(f"invalid filter '{sorted(unknown)[0]}'")
    out = PruneFilters()
    dangling = filters.get("dangling") or ["true"]
    if dangling[0].lower() not in ("true", "false", "1", "0"):
        raise InvalidArgument(f"invalid filter 'dangling={dangling[0]}'")
    out.dangling_only = dangling[0].lower() in ("true", "1")
    if filters.get("until"):
        import time

        out.until = parse_time_or_duration(filters["until"][0], time.time())
    out.labels = list(filters.get("label", []))
    out.not_labels = list(filters.get("label!", []))
    return out


async def prune(request: web.Request) -> web.Response:
    service = service_of(request)
    filters = _prune_filters(request.query.get("filters"))
    report = await asyncio.to_thread(service.prune, filters)
    return web.json_response({
        "ImagesDeleted": [{kind: value} for kind, value in report.removed] or None,
        "SpaceReclaimed": report.reclaimed})


# -- archives --

async def save(request: web.Request) -> web.StreamResponse:
    """`GET /images/get?names=...` and `GET /images/{name}/get`: a tar stream."""
    service = service_of(request)
    names = [request.match_info["name"]] if "name" in request.match_info else \
        request.query.getall("names", [])
    if not names:
        raise InvalidArgument("no image names given (names=...)")
    fmt = request.query.get("format", "oci")  # portside's own: `portside save --format docker`
    if fmt not in ("oci", "docker"):
        raise InvalidArgument(f"invalid archive format {fmt!r} (oci or docker)")
    loop = asyncio.get_running_loop()
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/x-tar"})
    raw = ResponseWriter(request, resp, loop)
    out = io.BufferedWriter(raw, CHUNK)

    def write() -> None:
        service.save(names, out, fmt)
        out.flush()

    try:
        await loop.run_in_executor(None, write)
    except Exception:
        raw.abandoned = True
        if not resp.prepared:
            raise
        log.exception("saving %s failed half-way", names)
        if request.transport is not None:
            request.transport.close()  # a cut tar, never one that looks whole
        return resp
    if not resp.prepared:
        await resp.prepare(request)
    with contextlib.suppress(ConnectionError):
        await resp.write_eof()
    return resp


async def load(request: web.Request) -> web.Response:
    """`POST /images/load`: the whole archive is read and checked before anything is said,
    so a body that is not an archive gets a 400."""
    service = service_of(request)
    reader = io.BufferedReader(BodyReader(request, asyncio.get_running_loop()), CHUNK)
    images = await asyncio.to_thread(service.load, reader)
    lines = []
    for image in images:
        names = [_familiar(t) for t in image.tags]
        lines += [f"Loaded image: {n}\n" for n in names] or [f"Loaded image ID: {image.id}\n"]
    body = b"".join(_line({"stream": text}) for text in lines)
    return web.Response(body=body, content_type=JSON)


def routes() -> list[tuple[str, str, Any]]:
    return [
        ("GET", "/images/json", list_images),
        ("POST", "/images/create", create),
        ("POST", "/images/load", load),
        ("POST", "/images/prune", prune),
        ("GET", "/images/get", save),
        ("GET", "/images/{name:.+}/json", inspect_image),
        ("GET", "/images/{name:.+}/history", history),
        ("GET", "/images/{name:.+}/get", save),
        ("POST", "/images/{name:.+}/push", push),
        ("POST", "/images/{name:.+}/tag", tag),
        ("DELETE", "/images/{name:.+}", remove),
    ]
