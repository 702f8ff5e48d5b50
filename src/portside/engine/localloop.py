"""The engine and its loop as `LocalEngine`'s nouns reach them, and the small adapters
they share (see `portside.engine.local`)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import IO, Any, TypeVar, cast

from portside.engine.containers import Engine
from portside.engine.imagetypes import RegistryAuth
from portside.engine.interface import (
    Credentials,
    Readable,
)
from portside.engine.reports import split_reference

T = TypeVar("T")
CHUNK = 1 << 20


class EngineLoop:
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


def registry_auth(credentials: Credentials | None) -> RegistryAuth | None:
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


def reader(source: Readable) -> IO[bytes]:
    return cast(IO[bytes], io.BufferedReader(_ReadableIO(source), CHUNK))


def write_to(out: IO[bytes], chunk: bytes) -> None:
    out.write(chunk)


async def next_of(stream: AsyncGenerator[dict[str, Any], None]) -> dict[str, Any]:
    return await anext(stream)


async def close_of(stream: AsyncGenerator[dict[str, Any], None]) -> None:
    await stream.aclose()


def tagged(reference: str) -> tuple[str, str]:
    """A reference as Docker's `repo` and `tag` (latest when none), as a client sends them."""
    repo, tag = split_reference(reference)
    return repo, tag or "latest"
