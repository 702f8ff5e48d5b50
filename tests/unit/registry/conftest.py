"""A registry server running in a thread of the test process, on 127.0.0.1 and a free port."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from portside.registry import server as srv


@dataclass
class RunningRegistry:
    registry: srv.Registry
    port: int
    loop: asyncio.AbstractEventLoop

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def run_registry(registry: srv.Registry, ssl_context: Any = None) -> tuple[RunningRegistry, Callable[[], None]]:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, Any] = {}

    def main() -> None:
        asyncio.set_event_loop(loop)
        runner, port = loop.run_until_complete(srv.start(registry, "127.0.0.1", 0, ssl_context))
        box["runner"], box["port"] = runner, port
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert ready.wait(30)

    def stop() -> None:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        registry.storage.close()

    return RunningRegistry(registry, box["port"], loop), stop


@pytest.fixture
def make_registry(tmp_path: Path) -> Iterator[Callable[..., RunningRegistry]]:
    stops: list[Callable[[], None]] = []

    def make(name: str = "reg", **kwargs: Any) -> RunningRegistry:
        ssl_context = kwargs.pop("ssl_context", None)
        registry = srv.open_registry(tmp_path / name, **kwargs)
        running, stop = run_registry(registry, ssl_context)
        stops.append(stop)
        return running

    yield make
    for stop in reversed(stops):
        stop()


@pytest.fixture
def reg(make_registry: Callable[..., RunningRegistry]) -> RunningRegistry:
    return make_registry()
