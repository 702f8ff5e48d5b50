"""`LocalEngine.containers`: the container noun of the engine interface in-process (see
`portside.engine.local`)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any, cast

from portside.engine import copying, detachkeys, execs, operations
from portside.engine import streams as engine_streams
from portside.engine.interface import (
    Change,
    CommitOptions,
    ContainerState,
    ContainerSummary,
    Created,
    CreateOptions,
    Document,
    ExecOptions,
    ExecState,
    Filters,
    LogChunk,
    LogOptions,
    PathStat,
    PruneReport,
    Readable,
    Stream,
    Top,
    WaitResult,
)
from portside.engine.localloop import EngineLoop, T, tagged, write_to
from portside.engine.reports import (
    changes,
    container_state,
    container_summary,
    exec_body,
    exec_state,
    path_stat,
    prune_report,
    top,
    wait_result,
)
from portside.engine.state import Container


class LocalContainers:
    def __init__(self, on: EngineLoop) -> None:
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
        operations.check_log_streams(options.stdout, options.stderr)
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
        name = "{}:{}".format(*tagged(options.reference)) if options.reference else None
        return self.on.run(operations.commit(self.engine, ref, name, options.comment,
                                             options.author, None, options.pause,
                                             list(options.changes)))

    def prune(self, filters: Filters | None = None) -> PruneReport:
        return prune_report(self.on.run(self.engine.prune(filters or {})), "ContainersDeleted")

    def rename(self, ref: str, name: str) -> None:
        from portside.engine import manage

        manage.rename(self.engine, ref, name)

    def update(self, ref: str, resources: Document) -> list[str]:
        from portside.engine import manage

        return list(self.on.run(manage.update(self.engine, ref, dict(resources))))

    def _quiet(self, ref: str, work: Callable[[Container], T]) -> T:
        """`work(container)` in this thread, the container held as the handlers hold it."""
        entered: asyncio.Future[Container] = self.on.loop.create_future()
        release = asyncio.Event()
        done = threading.Event()

        async def hold() -> None:
            try:
                async with copying.quiet(self.engine, ref) as c:
                    entered.set_result(c)
                    await release.wait()
            except BaseException as exc:
                if entered.done():
                    raise
                entered.set_exception(exc)  # the caller raises it (an unknown container)
            finally:
                done.set()

        async def enter() -> Container:
            self.on.spawn(hold())
            return await entered

        c = self.on.run(enter())
        try:
            return work(c)
        finally:
            self.on.loop.call_soon_threadsafe(release.set)
            done.wait()

    def export(self, ref: str, out: IO[bytes]) -> None:
        def work(c: Container) -> Container:
            copying.export(self.engine, c, lambda chunk: write_to(out, chunk))
            return c

        self.engine.event(self._quiet(ref, work), "export")

    def stat_path(self, ref: str, path: str) -> PathStat:
        return path_stat(self._quiet(ref, lambda c: copying.stat(self.engine, c, path)))

    def get_archive(self, ref: str, path: str, out: IO[bytes]) -> PathStat:
        seen: list[dict[str, Any]] = []

        def work(c: Container) -> Container:
            copying.read(self.engine, c, path, seen.append, lambda chunk: write_to(out, chunk))
            return c

        c = self._quiet(ref, work)
        self.engine.event(c, "archive-path")
        return path_stat(seen[0])

    def put_archive(self, ref: str, path: str, tar: Readable,
                    no_overwrite_dir_non_dir: bool = False, copy_uid_gid: bool = False) -> None:
        def work(c: Container) -> Container:
            copying.write(self.engine, c, path, cast(IO[bytes], tar), copy_uid_gid,
                          no_overwrite_dir_non_dir)
            return c

        self.engine.event(self._quiet(ref, work), "extract-to-dir")

    def attach(self, ref: str, stdin: bool = False, logs: bool = False,
               detach_keys: str = "") -> tuple[Stream, bytes]:
        c = self.engine.get(ref)
        tty = bool(c.config.get("Tty"))
        want_in = stdin and bool(c.config.get("OpenStdin"))
        keys = detachkeys.for_stream(tty, want_in, detach_keys)
        ours, theirs = socket.socketpair()

        async def begin() -> None:
            sink = engine_streams.SocketSink(theirs, tty)

            async def serve() -> None:
                try:
                    await engine_streams.attach(
                        self.engine, c, sink, logs=logs, stream=True, want_in=want_in,
                        want_out=True, want_err=True, detach_keys=keys)
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
            try:
                inst = execs.get(self.engine, exec_id)
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
