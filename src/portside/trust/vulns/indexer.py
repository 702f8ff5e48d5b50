"""The daemon extension that keeps the per-digest package index current: every image event
(pull, load, import, tag, commit, build) and every container start indexes the image it
names, once per digest, in a worker thread so the daemon's loop never reads layers; an
image's removal drops the entries of images no longer stored.
`portside where` then only joins the index with the running containers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portside.errors import PortsideError
from portside.trust.vulns.index import PackageIndex

if TYPE_CHECKING:
    from aiohttp import web

    from portside.engine.containers import Engine
    from portside.store.images import ImageStore

log = logging.getLogger(__name__)
_IMAGE_ACTIONS = {"pull", "load", "import", "tag", "commit", "build", "save"}


class PackageIndexer:
    """Index images under the engine's own root, with a store of its own (its own SQLite
    connection: the engine's is not shared across threads)."""

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    def install(self, app: web.Application, engine: Engine) -> None:
        queue: asyncio.Queue[dict[str, Any]] | None = None

        async def start(_: web.Application) -> None:
            nonlocal queue
            queue = engine.events.subscribe()
            self._task = asyncio.create_task(self._run(queue, engine.images.root))

        async def stop(_: web.Application) -> None:
            if queue is not None:
                engine.events.unsubscribe(queue)
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task

        app.on_startup.append(start)
        app.on_cleanup.append(stop)

    async def _run(self, queue: asyncio.Queue[dict[str, Any]], root: Path) -> None:
        from portside.store.images import ImageStore

        index, store = PackageIndex(root), ImageStore(root)
        try:
            while True:
                event = await queue.get()
                if event.get("Type") == "image" and event.get("Action") == "delete":
                    await asyncio.to_thread(
                        index.forget, [i.manifest_digest for i in store.list()])
                elif ref := _image_of(event):
                    await asyncio.to_thread(_index, index, store, ref)
        finally:
            index.close()
            store.db.close()


def _image_of(event: dict[str, Any]) -> str:
    actor = event.get("Actor") or {}
    if event.get("Type") == "image" and event.get("Action") in _IMAGE_ACTIONS:
        return str(actor.get("ID") or "")
    if event.get("Type") == "container" and event.get("Action") == "start":
        return str((actor.get("Attributes") or {}).get("image") or "")
    return ""


def _index(index: PackageIndex, store: ImageStore, ref: str) -> None:
    try:
        index.ensure(store, store.get(ref))
    except PortsideError as exc:  # the image went again, or a layer cannot be read
        log.info("package index: %s not indexed: %s", ref, exc)
