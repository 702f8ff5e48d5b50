"""`POST /build` (the classic builder protocol) and `POST /build/prune`.

The handler maps the query onto a BuildRequest, refusing with 400 what portside's builder
cannot do (resource limits and extra hosts for RUN, remote contexts, BuildKit sessions),
runs the build in a thread of its own (it reads the request body as it unpacks it), and
streams the builder's messages. As dockerd does, the status stays open until the first
message: an error before it (a bad parameter, a context that is not a tar, a Dockerfile
syntax error) is an HTTP error; after it, the last message carries the error.

portside's own client adds what the classic protocol lacks as query parameters Docker
clients never send (`steps`, `push`, `reproducible`, `epoch`, `git`, `dockerfile_name`),
and its secrets as parts of a `multipart/form-data` body before the context: read into
memory here, never written anywhere (docs/build.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Mapping
from typing import IO, Any, cast

from aiohttp import BodyPartReader, web

from portside.build.gitinfo import GitInfo, strip_credentials
from portside.engine.api import error_response
from portside.engine.builds import (
    BuildCancelled,
    BuildReport,
    BuildRequest,
    Builds,
    Message,
    builds_of,
    check_platform,
    error_message,
    network_of,
    stream,
)
from portside.errors import InvalidArgument, PortsideError, to_wire
from portside.numbers import is_digits

BUILDS_KEY = "builds"
QUEUE = 256  # messages between the build's thread and the socket

# Query parameters whose Docker defaults portside's builder matches; anything else is refused.
_UNSET = ("", "0", "null", "[]", "{}")
_REFUSED = {
    "memory": "memory limits for RUN steps",
    "memswap": "memory+swap limits for RUN steps",
    "cpushares": "CPU shares for RUN steps",
    "cpusetcpus": "CPU sets for RUN steps",
    "cpusetmems": "memory nodes for RUN steps",
    "cpuperiod": "CPU periods for RUN steps",
    "cpuquota": "CPU quotas for RUN steps",
    "cgroupparent": "a cgroup parent for RUN steps",
    "shmsize": "a /dev/shm size for RUN steps",
    "ulimits": "ulimits for RUN steps",
    "extrahosts": "extra /etc/hosts entries for RUN steps",
    "securityopt": "security options for RUN steps",
    "squash": "squashing the image's layers",
    "remote": "remote build contexts (send the context as the request body)",
    "session": "BuildKit sessions",
    "outputs": "BuildKit outputs",
}


def _flag(query: Mapping[str, str], name: str, default: bool = False) -> bool:
    value = query.get(name)
    if value is None:
        return default
    return value.lower() not in ("0", "false", "no", "")


def _json(query: Mapping[str, str], name: str, kind: type) -> Any:
    text = query.get(name, "")
    if text in ("", "null"):
        return kind()
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidArgument(f"error reading {name}: {exc}") from None
    if not isinstance(value, kind):
        raise InvalidArgument(f"error reading {name}: expected a JSON {kind.__name__}")
    return value


def parse_request(query: Any) -> BuildRequest:
    """The build's options from `POST /build`'s query (a MultiDict: `t` repeats)."""
    for name, what in _REFUSED.items():
        for value in query.getall(name, []):
            if value.strip() not in _UNSET:
                raise InvalidArgument(f"{name}={value}: portside's builder does not support {what}")
    version = query.get("version", "1")
    if version not in ("", "1"):
        raise InvalidArgument(
            f"version={version}: BuildKit is not supported by portside's daemon;"
            " use the classic builder protocol (DOCKER_BUILDKIT=0)"
        )
    isolation = query.get("isolation", "")
    if isolation not in ("", "default"):
        raise InvalidArgument(f"isolation={isolation}: only the default isolation is supported")
    # rm/forcerm: RUN containers are always removed (as forcerm=1); keeping them would not
    # change the image, and docker-py sends rm=False by default, so both are accepted.
    check_platform(query.get("platform", ""))
    network = network_of(query.get("networkmode", ""))
    args = _json(query, "buildargs", dict)
    labels = _json(query, "labels", dict)
    cache_from = _json(query, "cachefrom", list)
    if not all(isinstance(v, str) or v is None for v in args.values()):
        raise InvalidArgument("error reading buildargs: values must be strings")
    if not all(isinstance(v, str) for v in labels.values()):
        raise InvalidArgument("error reading labels: values must be strings")
    if not all(isinstance(v, str) for v in cache_from):
        raise InvalidArgument("error reading cachefrom: expected a list of image names")
    epoch = query.get("epoch", "")
    if epoch and not is_digits(epoch):
        raise InvalidArgument(f"epoch={epoch}: expected seconds since 1970")
    return BuildRequest(
        push=_flag(query, "push"),
        reproducible=_flag(query, "reproducible"),
        epoch=int(epoch) if epoch else None,
        git=_git(query),
        steps=_flag(query, "steps"),
        dockerfile_name=query.get("dockerfile_name", ""),
        dockerfile=query.get("dockerfile", ""),
        tags=[t for t in query.getall("t", []) if t],
        # `"X": null` is `--build-arg X` with X unset in the client's environment: no value.
        build_args={k: v for k, v in args.items() if v is not None},
        target=query.get("target") or None,
        labels=labels,
        no_cache=_flag(query, "nocache"),
        pull=_flag(query, "pull"),
        cache_from=cache_from,
        network=network,
    )


def _git(query: Mapping[str, str]) -> GitInfo | None:
    """`git`: the client's checkout (revision, source, dirty, commit_time) for the labels."""
    doc = _json(query, "git", dict)
    if not doc:
        return None
    revision, source = doc.get("revision"), doc.get("source", "")
    dirty, when = doc.get("dirty", False), doc.get("commit_time", 0)
    if not (isinstance(revision, str) and revision and isinstance(source, str)
            and isinstance(dirty, bool) and isinstance(when, int)):
        raise InvalidArgument("error reading git: expected revision, source, dirty, commit_time")
    return GitInfo(revision, strip_credentials(source), dirty, when)


SECRET_LIMIT = 500 * 1024  # per secret, as BuildKit's


async def read_secrets(request: web.Request) -> tuple[dict[str, bytes], Any]:
    """The secrets and the context of a `multipart/form-data` body (portside's client sends
    one when a build has secrets): each `secret` part (its filename is the id) is read into
    memory, never to disk; the `context` part, which comes last, is returned unread.
    A plain body is the context itself."""
    if not request.content_type.startswith("multipart/"):
        return {}, request.content
    reader = await request.multipart()
    found: dict[str, bytes] = {}
    while True:
        part = await reader.next()
        if part is None:
            raise InvalidArgument("build upload: no context part")
        if not isinstance(part, BodyPartReader):
            raise InvalidArgument("build upload: nested multipart is not accepted")
        if part.name == "context":
            return found, part
        if part.name != "secret" or not part.filename:
            raise InvalidArgument(f"build upload: unexpected part {part.name!r}")
        value = bytearray()
        while chunk := await part.read_chunk(1 << 16):
            value += chunk
            if len(value) > SECRET_LIMIT:
                raise InvalidArgument(f"secret {part.filename!r}: larger than 500 KiB")
        found[part.filename] = bytes(value)


class _Body:
    """The request body as a blocking file for the build's thread."""

    def __init__(self, content: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._content = content  # the request's stream, or the context's part
        self._loop = loop
        self._left = b""  # a part is read in chunks of at least 64 KiB (aiohttp's minimum)

    def read(self, n: int = -1) -> bytes:
        size = n if n > 0 else 1 << 20
        if not self._left:
            reading = (self._content.read_chunk(max(size, 1 << 16))
                       if isinstance(self._content, BodyPartReader)
                       else self._content.read(size))
            self._left = asyncio.run_coroutine_threadsafe(reading, self._loop).result()
        data, self._left = self._left[:size], self._left[size:]
        return data

    def readable(self) -> bool:
        return True


def _line(message: Message) -> bytes:
    return json.dumps(message).encode() + b"\r\n"


def _refusal(exc: PortsideError) -> web.Response:
    """Docker's error body, with the class and its facts beside `message` (`to_wire`)."""
    return error_response(to_wire(exc), exc.http_status)


async def build(request: web.Request) -> web.StreamResponse:
    try:
        return await _build(request)
    except PortsideError as exc:  # before the stream started: an HTTP error, as dockerd's
        return _refusal(exc)


async def _build(request: web.Request) -> web.StreamResponse:
    builds: Builds = request.app[BUILDS_KEY]
    options = parse_request(request.query)
    options.secrets, content = await read_secrets(request)
    quiet = _flag(request.query, "q")
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Message] = asyncio.Queue()  # bounded by `room`
    # The queue's free places: the build's thread takes one per message and hands the
    # message over without waiting for the loop (a round trip per message costs a
    # scheduler slice on a busy host); the loop gives the place back as it takes it.
    room = threading.Semaphore(QUEUE)
    gone = threading.Event()

    def emit(message: Message) -> None:
        while not room.acquire(timeout=0.5):
            if gone.is_set():
                raise BuildCancelled("the client closed the connection")
        if gone.is_set():
            raise BuildCancelled("the client closed the connection")
        try:
            loop.call_soon_threadsafe(queue.put_nowait, message)
        except RuntimeError:  # the loop is closed: the server went
            raise BuildCancelled("the daemon is stopping") from None

    def take() -> Message:
        room.release()
        return queue.get_nowait()

    done: asyncio.Future[BuildReport] = loop.create_future()

    def settle(result: BuildReport | None, error: BaseException | None) -> None:
        if done.cancelled():
            return
        if error is not None:
            done.set_exception(error)
        else:
            assert result is not None
            done.set_result(result)

    def work() -> None:
        try:
            report = builds.run(
                options, cast(IO[bytes], _Body(content, loop)), emit, cancelled=gone.is_set
            )
        except BaseException as exc:  # reported to the client, never lost in the thread
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, report, None)

    threading.Thread(target=work, name="portside-build", daemon=True).start()
    response: web.StreamResponse | None = None
    held: list[Message] = []  # with q=1 the messages are kept, shown only if the build fails

    async def send(messages: list[Message]) -> None:
        nonlocal response
        if gone.is_set() or not messages:
            return
        try:
            if response is None:
                response = web.StreamResponse(headers={"Content-Type": "application/json"})
                await response.prepare(request)
            await response.write(b"".join(_line(m) for m in messages))
        except ConnectionError:
            gone.set()  # the build stops at its next message

    try:
        while True:
            getter: asyncio.Future[Message] = asyncio.ensure_future(queue.get())
            waiting: set[asyncio.Future[Any]] = {getter, done}
            finished, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if getter not in finished:
                getter.cancel()
                break
            room.release()
            batch = [getter.result()]
            while not queue.empty():
                batch.append(take())
            if quiet:
                held.extend(batch)
            else:
                await send(batch)
    except BaseException:  # the handler cancelled (the server closing): the build stops too
        gone.set()
        raise
    rest: list[Message] = []
    while not queue.empty():
        rest.append(take())
    error = done.exception()
    if quiet:
        held.extend(rest)
        if error is None:
            # dockerd sends the id alone; the aux message before it (which the docker client
            # and docker-py pass over in quiet mode) lets portside's client read it as always.
            image_id = done.result().image.id
            await send([{"aux": {"ID": image_id}}, stream(image_id + "\n")])
        elif held:
            await send([*held, error_message(error)])
        else:
            raise error
    else:
        await send(rest)
        if error is not None:
            if response is None:
                raise error  # nothing sent yet: Docker's HTTP error (400 for a bad Dockerfile)
            await send([error_message(error)])
    if response is None:  # the client left before the first byte
        return web.Response()
    if not gone.is_set():
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
    return response


async def prune(request: web.Request) -> web.Response:
    builds: Builds = request.app[BUILDS_KEY]
    filters = request.query.get("filters", "")
    if filters.strip() not in _UNSET:
        return _refusal(InvalidArgument("filters: portside's build cache is pruned whole"))
    keep = request.query.get("keep-storage", "")
    if keep.strip() not in _UNSET:
        return _refusal(InvalidArgument("keep-storage: portside's build cache is pruned whole"))
    return web.json_response(await asyncio.to_thread(builds.prune))


def add_routes(app: web.Application, engine: Any) -> None:
    """The build routes (unversioned and versioned) and the daemon's one `Builds`."""
    builds = app[BUILDS_KEY] = builds_of(engine)

    async def stop_builds(app: web.Application) -> None:
        await asyncio.to_thread(builds.close)

    app.on_shutdown.append(stop_builds)
    for method, path, handler in (("POST", "/build", build), ("POST", "/build/prune", prune)):
        app.router.add_route(method, path, handler)
        app.router.add_route(method, r"/v{version:\d+\.\d+}" + path, handler)
