"""`GET /events` over the real handler and an event bus on the in-memory backend: replay
after a revision, refusal when events after it were discarded, and no event twice when a
replay and the live stream overlap."""

from __future__ import annotations

import asyncio
import json
import time
import warnings
from types import SimpleNamespace
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from portside.engine.api import errors, system
from portside.engine.events import EventBus
from portside.state import MemoryBackend


async def _client(bus: EventBus) -> TestClient[Any, Any]:
    app = web.Application(middlewares=[errors])
    with warnings.catch_warnings():  # the daemon's app uses a plain key too (make_app)
        warnings.simplefilter("ignore", web.NotAppKeyWarning)
        app["engine"] = SimpleNamespace(events=bus)
    app.router.add_route("GET", "/events", system.events)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    return client


async def _lines(client: TestClient[Any, Any], **query: str) -> tuple[int, list[Any]]:
    resp = await client.get("/events", params=query)
    body = await resp.read()
    if resp.status != 200:
        return resp.status, [json.loads(body)]
    return 200, [json.loads(line) for line in body.splitlines() if line.strip()]


def test_resume_replays_exactly_what_came_after() -> None:
    async def main() -> None:
        bus = EventBus(MemoryBackend())
        bus.loop = asyncio.get_running_loop()
        for i in range(5):
            bus.publish("volume", "create", f"v{i}")
        kept = bus.stored()
        client = await _client(bus)
        try:
            status, got = await _lines(client, after_revision=str(kept[1]["revision"]),
                                       until=f"{time.time():.9f}")
            assert status == 200 and got == kept[2:]
            status, got = await _lines(client, after_revision=str(kept[1]["revision"]),
                                       filters=json.dumps({"volume": ["v3"]}),
                                       until=f"{time.time():.9f}")
            assert [e["Actor"]["ID"] for e in got] == ["v3"]
            status, body = await _lines(client, after_revision="-1")
            assert status == 400 and "after_revision" in body[0]["message"]
        finally:
            await client.close()
            bus.close()

    asyncio.run(main())


def test_resume_from_before_discarded_events_is_410() -> None:
    async def main() -> None:
        bus = EventBus(MemoryBackend(), keep=4)
        bus.loop = asyncio.get_running_loop()
        for i in range(20):
            bus.publish("volume", "create", f"v{i}")
        oldest = bus.stored()[0]["revision"]
        client = await _client(bus)
        try:
            status, body = await _lines(client, after_revision="1", until="0")
            assert status == 410 and "has been compacted" in body[0]["message"]
            status, got = await _lines(client, after_revision=str(oldest - 1),
                                       until=f"{time.time():.9f}")
            assert status == 200 and got[0]["revision"] == oldest
        finally:
            await client.close()
            bus.close()

    asyncio.run(main())


def test_live_events_follow_the_replay_without_repeats() -> None:
    async def main() -> None:
        bus = EventBus(MemoryBackend())
        bus.loop = asyncio.get_running_loop()
        bus.publish("volume", "create", "before")
        client = await _client(bus)
        try:
            until = time.time() + 1.5
            reader = asyncio.create_task(_lines(client, after_revision="0",
                                                until=f"{until:.9f}"))
            await asyncio.sleep(0.3)
            for i in range(3):
                await asyncio.to_thread(bus.publish, "volume", "create", f"live{i}")
            status, got = await reader
            assert status == 200
            assert [e["Actor"]["ID"] for e in got] == ["before", "live0", "live1", "live2"]
            revisions = [e["revision"] for e in got]
            assert revisions == sorted(set(revisions))
        finally:
            await client.close()
            bus.close()

    asyncio.run(main())
