"""Run a registry server in a thread of the test process, on 127.0.0.1 and a free port."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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




def http(reg: RunningRegistry, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP request: (status, headers, body)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", reg.port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.headers), resp.read()
    finally:
        conn.close()


def error_code(body: bytes) -> str:
    import json

    return str(json.loads(body)["errors"][0]["code"])
