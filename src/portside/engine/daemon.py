"""`portside daemon`: the engine behind a root-only unix socket, in the foreground.

Start: open the state, serve the API, re-adopt running containers (live-restore) and
start those whose restart policy says so. Stop (SIGTERM/SIGINT): close the socket and
leave containers running under their conmon; the next daemon adopts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from portside.errors import Conflict

if TYPE_CHECKING:
    from portside.engine.extension import DaemonExtension
    from portside.engine.imagepolicy import ImagePolicy

log = logging.getLogger("portside.daemon")


def _claim_socket(path: Path) -> None:
    """Refuse when another daemon answers on `path`; remove a stale socket file."""
    import socket

    if not path.exists():
        return
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(path))
    except OSError:
        path.unlink(missing_ok=True)
        return
    finally:
        s.close()
    raise Conflict(f"another daemon is already listening on {path}")


async def serve(root: Path, socket_path: Path, default_runtime: str = "crun",
                extensions: Sequence[DaemonExtension] = (),
                policy: ImagePolicy | None = None) -> None:
    from aiohttp import web

    from portside.engine.api import make_app
    from portside.engine.assembly import build_engine

    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    socket_path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    _claim_socket(socket_path)
    engine = build_engine(root, default_runtime, policy=policy)
    engine.events.loop = asyncio.get_running_loop()
    app = make_app(engine)
    for extension in extensions:
        extension.install(app, engine)
    # Before the socket answers (and before the extensions start, in `setup`): no client
    # may see a container "running" that died while no daemon ran (Docker restores its
    # containers before serving, too).
    await engine.monitor.recover()
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    old_umask = os.umask(0o177)  # the socket is root-only (0600)
    try:
        site = web.UnixSite(runner, str(socket_path))
        await site.start()
    finally:
        os.umask(old_umask)
    os.chmod(socket_path, 0o600)
    with open(root / "daemon.pid", "w") as f:
        f.write(str(os.getpid()))
    log.info("portside daemon listening on %s (root %s)", socket_path, root)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("portside daemon stopping; containers keep running")
        engine.monitor.close()
        with contextlib.suppress(Exception):
            engine.runtime.close()
        await runner.cleanup()
        await asyncio.to_thread(engine.networks.close)  # idle bridges go
        with contextlib.suppress(FileNotFoundError):
            socket_path.unlink()
        with contextlib.suppress(FileNotFoundError):
            (root / "daemon.pid").unlink()
        engine.state.close()
        engine.events.close()  # the events still queued are recorded first


def run(root: Path, socket_path: Path, default_runtime: str = "crun",
        extensions: Sequence[DaemonExtension] = (), policy: ImagePolicy | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(root, socket_path, default_runtime, extensions, policy))
