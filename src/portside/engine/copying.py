"""`cp` and `export` on a container, for the archive handlers (`engine.api.archive`) and
the in-process engine: the work is in `engine.archive` on descriptors of the container's
root (`engine.rootfs`); a container that is not running is held under its lock meanwhile
(`quiet`), so no start mounts its rw layer. The blocking functions run in worker threads.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import IO, Any

from portside.engine import archive, rootfs
from portside.engine.containers import Engine
from portside.engine.state import Container

Emit = Callable[[bytes], None]


@contextlib.asynccontextmanager
async def quiet(engine: Engine, ref: str) -> AsyncIterator[Container]:
    """The container, under its lock unless it runs (a running one is reached through
    its own mount namespace and needs no lock). On the loop."""
    c = engine.get(ref)
    if c.running:
        yield c
        return
    async with engine.lock(c.id):
        yield engine.get(c.id)


def stat(engine: Engine, c: Container, path: str) -> dict[str, Any]:
    """What `path` is in the container (the stat header's JSON)."""
    with rootfs.open_root(engine, c) as root:
        return archive.path_stat(root, path, c.name)


def read(engine: Engine, c: Container, path: str,
         start: Callable[[dict[str, Any]], None], emit: Emit) -> None:
    """A tar of `path`: its stat given to `start` first, then the tar's bytes to `emit`
    (one root for both)."""
    with rootfs.open_root(engine, c) as root:
        start(archive.path_stat(root, path, c.name))
        archive.write_path(root, path, c.name, emit)


def write(engine: Engine, c: Container, path: str, tar: IO[bytes], copy_owner: bool,
          no_overwrite: bool) -> None:
    """Extract `tar` at `path`; a read-only container's root takes only its rw mounts."""
    writable = None
    if c.host_config.get("ReadonlyRootfs") and not c.running:
        # A running one says so itself (its root is mounted read-only); a stopped
        # one's helper mount is writable, so only its rw mounts may be written.
        rw = [m["Destination"].rstrip("/") for m in c.mounts if m.get("RW", True)]

        def writable(resolved: str) -> bool:
            return any(resolved == d or resolved.startswith(d + "/") for d in rw)

    with rootfs.open_root(engine, c) as root:
        archive.extract(root, path, c.name, tar, copy_owner, no_overwrite, writable)


def export(engine: Engine, c: Container, emit: Emit) -> None:
    """A tar of the container's whole root filesystem (without its volumes)."""
    with rootfs.open_root(engine, c, volumes=False) as root:
        archive.write_tree(root, emit)
