"""A portside registry in a thread of the test that logs every request it answers, so a
test can assert from the registry's side (which blobs were fetched, whether any upload
happened); and `publish`, which puts an image there from a store of its own."""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from helpers.imagefactory import add_image

from portside.registry import server as srv
from portside.registry import transfer
from portside.store.images import ImageStore


@dataclass
class LoggedRegistry:
    """A portside registry in a thread of the test, with every request it answered."""

    port: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def blob_gets(self) -> list[str]:
        return [p for m, p in self.requests if m == "GET" and "/blobs/sha256:" in p]

    def uploads(self) -> list[str]:
        return [p for m, p in self.requests if m in ("POST", "PATCH", "PUT") and "/blobs/" in p]


def serve_registry(root: Path, htpasswd: Path | None = None) -> tuple[LoggedRegistry, Any]:
    logged = LoggedRegistry()
    registry = srv.open_registry(root, htpasswd=htpasswd)
    app = srv.make_app(registry)

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        logged.requests.append((request.method, request.path))
        response: web.StreamResponse = await handler(request)
        return response

    app.middlewares.append(record)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, Any] = {}

    def main() -> None:
        asyncio.set_event_loop(loop)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        box["runner"] = runner
        logged.port = runner.addresses[0][1]
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

    return logged, stop


def publish(tmp_path: Path, ref: str, layers: int = 2, size: int = 64 << 10,
            auth: tuple[str, str] | None = None) -> ImageStore:
    """Push an image of random layers to a registry from a store of its own."""
    other = ImageStore(tmp_path / f"other-{abs(hash(ref))}")
    files = [{f"data{i}.bin": os.urandom(size)} for i in range(layers)]
    add_image(other, files, tags=(ref,), config={"Cmd": ["sh"], "Labels": {"team": "blue"}})
    asyncio.run(transfer.push(other, ref, auth=auth))
    return other
