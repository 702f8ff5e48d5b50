"""`LocalEngine`: the engine interface in the engine's own process (podman's "abi" to
`RemoteEngine`'s "tunnel").

It holds an `Engine` and the asyncio loop the engine runs on; its methods are synchronous
and called from other threads (an orchestrator or a node agent inside the daemon, a test):
the engine's coroutines run on the loop through `asyncio.run_coroutine_threadsafe`, what
the daemon's handlers run on the loop runs there too, and what they run in worker threads
runs in the caller's thread. The work is the very functions the Docker API handlers call
(`engine.operations`, `engine.execs`, `engine.streams`, `engine.copying`,
`engine.imagedocs`, `network.operations`), and the answers are read by the same readers
(`engine.reports`) as RemoteEngine's, so both give the same dataclasses and documents for
the same state. Attach and exec give a connected socket whose engine side is pumped on the
loop with the daemon's framing (multiplexed unless TTY), so one client reads both.

`LocalEngine.open(root)` builds the real engine of a root and runs its loop in a thread,
as `portside daemon` does without the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
import threading
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar, cast

from portside.engine import copying, execs, imagedocs, operations
from portside.engine import streams as engine_streams
from portside.engine.containers import Engine
from portside.engine.images import ImageService
from portside.engine.imagetypes import RegistryAuth
from portside.engine.interface import (
    BuildOptions,
    Change,
    CommitOptions,
    ContainerState,
    ContainerSummary,
    Created,
    CreateOptions,
    Credentials,
    Document,
    EndpointOptions,
    EngineAPI,
    Event,
    EventOptions,
    ExecOptions,
    ExecState,
    Filters,
    HistoryEntry,
    ImageSummary,
    ImportOptions,
    LogChunk,
    LogOptions,
    NetworkCreate,
    PathStat,
    Progress,
    PruneReport,
    PullOptions,
    PullReport,
    PushOptions,
    PushReport,
    Readable,
    RemovedImage,
    Stream,
    Top,
    VolumeCreate,
    WaitResult,
)
from portside.engine.reports import (
    ProgressFeed,
    changes,
    connect_body,
    container_state,
    container_summary,
    event,
    exec_body,
    exec_state,
    history_entry,
    image_summary,
    network_body,
    path_stat,
    prune_report,
    pull_outcome,
    pull_reference,
    push_outcome,
    removed_image,
    split_reference,
    top,
    volume_body,
    wait_result,
)
from portside.network import operations as netops
from portside.network.manager import NetworkManager

T = TypeVar("T")
CHUNK = 1 << 20


class _Loop:
    """The engine and its loop, as every noun reaches them."""

    def __init__(self, engine: Engine, loop: asyncio.AbstractEventLoop) -> None:
        self.engine = engine
        self.loop = loop
        self.tasks: set[asyncio.Future[Any]] = set()  # stream pumps, kept until done

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Call `fn` on the loop's thread (what the handlers do on the loop)."""
        async def on_loop() -> T:
            return fn(*args)

        return self.run(on_loop())

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Start a coroutine on the loop without waiting for it (from the loop)."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


def _auth(credentials: Credentials | None) -> RegistryAuth | None:
    """What the daemon reads from X-Registry-Auth: a user name and password, if any."""
    if credentials is None or not credentials.username:
        return None
    return RegistryAuth(credentials.username, credentials.password)


class _ReadableIO(io.RawIOBase):
    """A `Readable` as the binary file the image service reads."""

    def __init__(self, source: Readable) -> None:
        self.source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.source.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def _reader(source: Readable) -> IO[bytes]:
    return cast(IO[bytes], io.BufferedReader(_ReadableIO(source), CHUNK))


def _write(out: IO[bytes], chunk: bytes) -> None:
    out.write(chunk)


async def _next(stream: AsyncGenerator[dict[str, Any], None]) -> dict[str, Any]:
    return await anext(stream)


def _tagged(reference: str) -> tuple[str, str]:
    """A reference as Docker's `repo` and `tag` (latest when none), as a client sends them."""
    repo, tag = split_reference(reference)
    return repo, tag or "latest"


class LocalImages:
    def __init__(self, on: _Loop) -> None:
        self.on = on

    @property
    def service(self) -> ImageService:
        return self.on.engine.image_service

    def inspect(self, ref: str) -> Document:
        return cast(Document, imagedocs.inspect(self.service, ref))

    def history(self, ref: str) -> list[HistoryEntry]:
        return [history_entry(h) for h in imagedocs.history(self.service.history(ref))]

    def tag(self, source: str, target: str) -> None:
        self.service.tag(source, *_tagged(target))

    def remove(self, ref: str, force: bool = False, prune: bool = True) -> list[RemovedImage]:
        return [removed_image(d) for d in
                imagedocs.removed(self.service.remove(ref, force, not prune))]

    def prune(self, filters: Filters | None = None) -> PruneReport:
        report = self.service.prune(imagedocs.prune_filters(filters or {}))
        return prune_report(imagedocs.prune_report(report), "ImagesDeleted")

    def pull(self, options: PullOptions, progress: Progress) -> PullReport:
        repo, tag = _tagged(options.reference)
        reference = pull_reference(repo, tag)
        feed, rest = ProgressFeed(progress), []

        def emit(msg: dict[str, Any]) -> None:
            if (left := feed.feed(msg)) is not None:
                rest.append(left)

        try:
            self.service.pull(reference, _auth(options.credentials), emit,
                              options.platform or "", False, options.insecure)
        finally:
            progress.close()
        digest, updated = pull_outcome(rest)
        image = self.inspect(f"{repo}@{tag}" if tag.startswith("sha256:") else f"{repo}:{tag}")
        return PullReport(image_id=str(image["Id"]), digest=digest, updated=updated)

    def push(self, options: PushOptions, progress: Progress) -> PushReport:
        repo, tag = split_reference(options.reference)
        feed, rest = ProgressFeed(progress), []

        def emit(msg: dict[str, Any]) -> None:
            if (left := feed.feed(msg)) is not None:
                rest.append(left)

        try:
            self.service.push(repo, tag, _auth(options.credentials), emit, options.insecure)
        finally:
            progress.close()
        digest, size = push_outcome(rest)
        return PushReport(reference=options.reference, digest=digest, size=size)

    def save(self, refs_: list[str], out: IO[bytes], format: str = "oci") -> None:
        imagedocs.check_save(refs_, format)
        self.service.save(refs_, out, format)

    def load(self, archive: Readable) -> list[str]:
        return [name for _, name in imagedocs.loaded(self.service.load(_reader(archive)))]

    def import_(self, tar: Readable, options: ImportOptions) -> str:
        repo, tag = _tagged(options.reference) if options.reference else ("", "")
        image = self.service.import_tarball(_reader(tar), repo, tag, options.message,
                                            list(options.changes))
        return image.id

    def build(self, context: Readable, options: BuildOptions,
              log: Callable[[str], None]) -> str:
        from portside.engine.localbuild import build

        return build(self.on.engine, context, options, log)

    def list(self, all: bool = False, filters: Filters | None = None) -> list[ImageSummary]:
        return [image_summary(d) for d in imagedocs.summaries(self.service, filters or {})]


class LocalContainers:
    def __init__(self, on: _Loop) -> None:
        self.on = on
        self.engine = on.engine

    def create(self, options: CreateOptions) -> Created:
        c = self.engine.create(dict(options.body), options.name)
        return Created(id=c.id, warnings=[])

    def start(self, ref: str) -> None:
        self.on.run(self.engine.start(ref))

    def stop(self, ref: str, timeout: int | None = None, signal: str | None = None) -> None:
        self.on.run(self.engine.stop(ref, timeout, signal))

    def kill(self, ref: str, signal: str = "SIGKILL") -> None:
        self.on.run(self.engine.kill(ref, signal))

    def restart(self, ref: str, timeout: int | None = None) -> None:
        self.on.run(self.engine.restart(ref, timeout))

    def pause(self, ref: str) -> None:
        self.on.run(self.engine.pause(ref))

    def unpause(self, ref: str) -> None:
        self.on.run(self.engine.unpause(ref))

    def wait(self, ref: str, condition: str = "not-running") -> WaitResult:
        return self.begin_wait(ref, condition)()

    def begin_wait(self, ref: str, condition: str = "not-running"
                   ) -> Callable[[], WaitResult]:
        fut = self.on.call(self.engine.register_wait, ref, condition)

        async def result() -> dict[str, Any]:
            return await fut

        return lambda: wait_result(self.on.run(result()))

    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        self.on.run(self.engine.remove(ref, force, volumes))

    def inspect(self, ref: str) -> Document:
        c = self.engine.get(ref)
        return cast(Document, operations.container_inspect(self.engine, c))

    def state(self, ref: str) -> ContainerState:
        return container_state(self.inspect(ref)["State"])  # type: ignore[arg-type]

    def logs(self, ref: str, options: LogOptions) -> Iterator[LogChunk]:
        c = self.engine.get(ref)
        since, until, tail = operations.log_window(options.since or None,
                                                   options.until or None, options.tail)
        gone = threading.Event()
        chunks = operations.log_chunks(
            self.engine, c, stdout=options.stdout, stderr=options.stderr,
            timestamps=options.timestamps, since=since, until=until, tail=tail,
            follow=options.follow, gone=gone)
        tty = bool(c.config.get("Tty"))

        def read() -> Iterator[LogChunk]:
            try:
                for stream, data in chunks:
                    yield LogChunk(1 if tty else stream, data)  # a TTY's stream is raw
            finally:
                gone.set()
                chunks.close()

        if not (options.stdout or options.stderr):
            next(chunks)  # raises the handler's error, at the call
        return read()

    def top(self, ref: str, ps_args: str = "") -> Top:
        return top(operations.top(self.engine, self.engine.get(ref)))

    def stats(self, ref: str) -> Document:
        c = self.engine.get(ref)

        async def one() -> dict[str, Any]:
            samples = operations.stats(self.engine, c, False, False)
            try:
                return await anext(samples)
            finally:
                await samples.aclose()

        return cast(Document, self.on.run(one()))

    def changes(self, ref: str) -> list[Change]:
        from portside.engine import commit as commit_mod

        return changes(commit_mod.changes(self.engine, self.engine.get(ref)) or None)

    def commit(self, ref: str, options: CommitOptions) -> str:
        self.engine.get(ref)
        name = "{}:{}".format(*_tagged(options.reference)) if options.reference else None
        return self.on.run(operations.commit(self.engine, ref, name, options.comment,
                                             options.author, None, options.pause))

    def prune(self, filters: Filters | None = None) -> PruneReport:
        return prune_report(self.on.run(self.engine.prune(filters or {})), "ContainersDeleted")

    def rename(self, ref: str, name: str) -> None:
        from portside.engine import manage

        manage.rename(self.engine, ref, name)

    def update(self, ref: str, resources: Document) -> list[str]:
        from portside.engine import manage

        return list(self.on.run(manage.update(self.engine, ref, dict(resources))))

    def _quiet(self, ref: str, work: Callable[[Any], T]) -> T:
        """`work(container)` in this thread, the container held as the handlers hold it."""
        entered: asyncio.Future[Any] = self.on.loop.create_future()
        release = asyncio.Event()
        done = threading.Event()

        async def hold() -> None:
            try:
                async with copying.quiet(self.engine, ref) as c:
                    entered.set_result(c)
                    await release.wait()
            except BaseException as exc:
                if not entered.done():
                    entered.set_exception(exc)
                raise
            finally:
                done.set()

        async def enter() -> Any:
            self.on.spawn(hold())
            return await entered

        c = self.on.run(enter())
        try:
            return work(c)
        finally:
            self.on.loop.call_soon_threadsafe(release.set)
            done.wait()

    def export(self, ref: str, out: IO[bytes]) -> None:
        def work(c: Any) -> Any:
            copying.export(self.engine, c, lambda chunk: _write(out, chunk))
            return c

        self.engine.event(self._quiet(ref, work), "export")

    def stat_path(self, ref: str, path: str) -> PathStat:
        return path_stat(self._quiet(ref, lambda c: copying.stat(self.engine, c, path)))

    def get_archive(self, ref: str, path: str, out: IO[bytes]) -> PathStat:
        seen: list[dict[str, Any]] = []

        def work(c: Any) -> Any:
            copying.read(self.engine, c, path, seen.append, lambda chunk: _write(out, chunk))
            return c

        c = self._quiet(ref, work)
        self.engine.event(c, "archive-path")
        return path_stat(seen[0])

    def put_archive(self, ref: str, path: str, tar: Readable,
                    no_overwrite_dir_non_dir: bool = False, copy_uid_gid: bool = False) -> None:
        def work(c: Any) -> Any:
            copying.write(self.engine, c, path, cast(IO[bytes], tar), copy_uid_gid,
                          no_overwrite_dir_non_dir)
            return c

        self.engine.event(self._quiet(ref, work), "extract-to-dir")

    def attach(self, ref: str, stdin: bool = False, logs: bool = False,
               detach_keys: str = "") -> tuple[Stream, bytes]:
        c = self.engine.get(ref)
        tty = bool(c.config.get("Tty"))
        ours, theirs = socket.socketpair()

        async def begin() -> None:
            sink = engine_streams.SocketSink(theirs, tty)

            async def serve() -> None:
                try:
                    await engine_streams.attach(
                        self.engine, c, sink, logs=logs, stream=True,
                        want_in=stdin and bool(c.config.get("OpenStdin")),
                        want_out=True, want_err=True)
                finally:
                    await sink.close()

            self.on.spawn(serve())

        self.on.run(begin())
        return ours, b""

    def resize(self, ref: str, rows: int, cols: int) -> None:
        operations.resize(self.engine, ref, rows, cols)

    def exec_create(self, ref: str, options: ExecOptions) -> str:
        return self.on.call(execs.create, self.engine, ref, exec_body(options))

    def exec_start(self, exec_id: str, tty: bool = False,
                   console_size: tuple[int, int] | None = None) -> tuple[Stream, bytes]:
        body: dict[str, Any] = {"Detach": False, "Tty": tty}
        if console_size is not None:
            body["ConsoleSize"] = list(console_size)
        ours, theirs = socket.socketpair()

        async def begin() -> None:
            inst = execs.get(self.engine, exec_id)
            try:
                proc = await execs.begin(self.engine, inst, body)
            except BaseException:
                theirs.close()
                raise
            sink = engine_streams.SocketSink(theirs, bool(inst["ProcessConfig"]["tty"]))

            async def serve() -> None:
                try:
                    await execs.pump(self.engine, inst, proc, sink)
                finally:
                    await sink.close()

            self.on.spawn(serve())

        try:
            self.on.run(begin())
        except BaseException:
            ours.close()
            raise
        return ours, b""

    def exec_start_detached(self, exec_id: str) -> None:
        async def begin() -> None:
            await execs.begin(self.engine, execs.get(self.engine, exec_id), {"Detach": True})

        self.on.run(begin())

    def exec_resize(self, exec_id: str, rows: int, cols: int) -> None:
        self.on.call(lambda: execs.resize(execs.get(self.engine, exec_id), rows, cols))

    def exec_inspect(self, exec_id: str) -> ExecState:
        return exec_state(self.on.call(lambda: execs.public(execs.get(self.engine, exec_id))))

    def list(self, all: bool = False, filters: Filters | None = None,
             size: bool = False, limit: int = 0) -> list[ContainerSummary]:
        docs = self.on.call(operations.container_list, self.engine, filters or {}, all,
                            limit or -1)
        if size:
            operations.add_sizes(self.engine, docs)
        return [container_summary(d) for d in docs]


class LocalNetworks:
    def __init__(self, on: _Loop) -> None:
        self.on = on

    @property
    def manager(self) -> NetworkManager:
        manager: NetworkManager = self.on.engine.networks.manager
        return manager

    def _lookup(self, ref: str) -> netops.ContainerRef:
        return operations.container_ref(self.on.engine, ref)

    def create(self, options: NetworkCreate) -> str:
        return netops.create(self.manager, network_body(options)).id

    def inspect(self, ref: str) -> Document:
        return cast(Document, netops.inspect_doc(self.manager, ref))

    def remove(self, ref: str) -> None:
        netops.remove(self.manager, ref)

    def prune(self, filters: Filters | None = None) -> PruneReport:
        return prune_report({"NetworksDeleted": netops.prune(self.manager, filters or {})},
                            "NetworksDeleted")

    def connect(self, network: str, container: str,
                endpoint: EndpointOptions | None = None) -> None:
        netops.connect(self.manager, self._lookup, network, connect_body(container, endpoint))

    def disconnect(self, network: str, container: str, force: bool = False) -> None:
        netops.disconnect(self.manager, self._lookup, network,
                          {"Container": container, "Force": force})

    def list(self, filters: Filters | None = None) -> list[Document]:
        return cast(list[Document], netops.list_docs(self.manager, filters or {}))


class LocalVolumes:
    def __init__(self, on: _Loop) -> None:
        self.on = on
        self.engine = on.engine

    def create(self, options: VolumeCreate) -> Document:
        return cast(Document, self.on.call(operations.volume_create, self.engine,
                                           volume_body(options)))

    def inspect(self, name: str) -> Document:
        return cast(Document, self.on.call(self.engine.volumes.get, name))

    def remove(self, name: str, force: bool = False) -> None:
        self.on.call(operations.volume_remove, self.engine, name, force)

    def prune(self, filters: Filters | None = None) -> PruneReport:
        return prune_report(self.on.call(operations.volume_prune, self.engine, filters or {}),
                            "VolumesDeleted")

    def list(self, filters: Filters | None = None) -> list[Document]:
        return cast(list[Document], self.on.call(operations.volume_list, self.engine,
                                                 filters or {}))


class LocalSystem:
    def __init__(self, on: _Loop) -> None:
        self.on = on
        self.engine = on.engine

    def ping(self) -> bool:
        return not self.on.loop.is_closed()

    def version(self) -> Document:
        from portside.engine.hostinfo import version_doc

        return cast(Document, version_doc(self.engine))

    def info(self) -> Document:
        from portside.engine.hostinfo import info_doc

        return cast(Document, info_doc(self.engine))

    def df(self) -> Document:
        from portside.engine import disk

        service = self.engine.image_service
        return cast(Document, disk.system_df(
            self.engine, lambda image: imagedocs.summary(service, image), set()))

    def prune_build_cache(self) -> PruneReport:
        from portside.engine import disk

        return prune_report(disk.prune_build_cache(self.engine), "CachesDeleted")

    def events(self, options: EventOptions) -> Iterator[Event]:
        watch = self.on.call(operations.EventWatch, self.engine, options.since or None,
                             options.until or None,
                             str(options.after_revision) if options.after_revision else None,
                             dict(options.filters))
        stream = watch.stream()

        def read() -> Iterator[Event]:
            try:
                while True:
                    try:
                        doc = self.on.run(_next(stream))
                    except StopAsyncIteration:
                        return
                    yield event(doc)
            finally:
                with contextlib.suppress(RuntimeError):  # the loop is gone already
                    self.on.run(stream.aclose())
                    self.on.call(watch.close)

        return read()


class LocalEngine:
    """The engine of this process: `LocalEngine(engine, loop)` over an Engine whose loop
    runs in another thread, or `with LocalEngine.open(root) as engine:` to build one."""

    def __init__(self, engine: Engine, loop: asyncio.AbstractEventLoop) -> None:
        on = _Loop(engine, loop)
        self.engine = engine
        self.loop = loop
        self._containers = LocalContainers(on)
        self._images = LocalImages(on)
        self._networks = LocalNetworks(on)
        self._volumes = LocalVolumes(on)
        self._system = LocalSystem(on)

    @classmethod
    @contextlib.contextmanager
    def open(cls, root: Path | str, default_runtime: str = "runc") -> Iterator[LocalEngine]:
        """The real engine of `root` (`assembly.build_engine`) on a loop in its own thread:
        containers that died while no engine ran are recovered first (as the daemon does
        before it serves); on exit the engine's parts close as the daemon's do when it
        stops (containers keep running under their conmon)."""
        from portside.engine.assembly import build_engine

        root = Path(root)
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        engine = build_engine(root, default_runtime)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="portside-engine",
                                  daemon=True)
        thread.start()
        try:
            async def begin() -> None:
                engine.events.loop = asyncio.get_running_loop()
                await engine.monitor.recover()

            asyncio.run_coroutine_threadsafe(begin(), loop).result()
            yield cls(engine, loop)
        finally:
            asyncio.run_coroutine_threadsafe(_close(engine), loop).result()
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    @property
    def containers(self) -> LocalContainers:
        return self._containers

    @property
    def images(self) -> LocalImages:
        return self._images

    @property
    def networks(self) -> LocalNetworks:
        return self._networks

    @property
    def volumes(self) -> LocalVolumes:
        return self._volumes

    @property
    def system(self) -> LocalSystem:
        return self._system


async def _close(engine: Engine) -> None:
    """What `portside daemon` closes when it stops, then the tasks still on the loop."""
    engine.monitor.close()
    with contextlib.suppress(Exception):
        engine.runtime.close()
    await asyncio.to_thread(engine.networks.close)  # idle bridges go
    engine.state.close()
    engine.events.close()  # the events still queued are recorded first
    current = asyncio.current_task()
    pending = [t for t in asyncio.all_tasks() if t is not current]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def _conforms(engine: LocalEngine) -> EngineAPI:
    """Static proof (mypy) that LocalEngine is an EngineAPI."""
    return engine
