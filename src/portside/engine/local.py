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
import threading
from collections.abc import Iterator
from pathlib import Path

from portside.engine.containers import Engine
from portside.engine.interface import EngineAPI
from portside.engine.localcontainers import LocalContainers
from portside.engine.localloop import EngineLoop
from portside.engine.localnouns import LocalImages, LocalNetworks, LocalSystem, LocalVolumes

__all__ = ["LocalEngine"]


class LocalEngine:
    """The engine of this process: `LocalEngine(engine, loop)` over an Engine whose loop
    runs in another thread, or `with LocalEngine.open(root) as engine:` to build one."""

    def __init__(self, engine: Engine, loop: asyncio.AbstractEventLoop) -> None:
        on = EngineLoop(engine, loop)
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
    from portside.engine.builds import builds_of

    await asyncio.to_thread(builds_of(engine).close)  # running builds stop and clean up
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
