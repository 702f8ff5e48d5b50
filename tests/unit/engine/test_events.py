"""The event bus: each event gets the revision that recorded it, the newest `keep` survive a
restart (a new bus on the same backend), and a resume from a revision gets exactly what came
after it, or `Compacted` when some of that has been discarded."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from portside.engine.events import EventBus
from portside.state import Compacted, MemoryBackend, SqliteBackend


def test_events_carry_increasing_revisions() -> None:
    bus = EventBus(MemoryBackend())
    first = bus.publish("volume", "create", "v1", {"driver": "local"})
    second = bus.publish("container", "start", "c" * 64, {"image": "busybox"})
    assert first["revision"] < second["revision"]
    # Docker's fields are untouched
    assert {k for k in second if k != "revision"} == {
        "Type", "Action", "Actor", "scope", "time", "timeNano", "status", "id", "from"}
    assert bus.stored() == [first, second]
    assert bus.after(first["revision"]) == [second]
    assert bus.since((second["timeNano"] - 1000) / 1e9) == [second]


def test_events_survive_a_new_bus_on_the_same_file(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "state.db")
    bus = EventBus(backend)
    seen = [bus.publish("volume", "create", f"v{i}") for i in range(3)]
    backend.close()
    backend = SqliteBackend(tmp_path / "state.db")
    again = EventBus(backend)
    assert again.stored() == seen
    later = again.publish("volume", "destroy", "v0")
    assert later["revision"] > seen[-1]["revision"]
    assert again.after(seen[0]["revision"]) == [*seen[1:], later]
    backend.close()


def test_only_the_newest_are_kept_and_a_resume_from_before_them_is_refused() -> None:
    backend = MemoryBackend()
    bus = EventBus(backend, keep=8)
    published = [bus.publish("volume", "create", f"v{i}") for i in range(40)]
    kept = bus.stored()
    assert 8 <= len(kept) <= 9 and kept == published[-len(kept):]
    assert bus.after(published[-3]["revision"]) == published[-2:]
    with pytest.raises(Compacted) as info:
        bus.after(published[0]["revision"])
    assert info.value.compacted > published[0]["revision"]
    assert backend.compacted_revision() == kept[0]["revision"]  # history does not grow


def test_live_subscribers_get_events_in_revision_order() -> None:
    async def main() -> list[int]:
        bus = EventBus(MemoryBackend())
        bus.loop = asyncio.get_running_loop()
        q = bus.subscribe()
        threads = [asyncio.to_thread(bus.publish, "volume", "create", f"v{i}")
                   for i in range(20)]
        await asyncio.gather(*threads)
        for i in range(5):
            bus.publish("volume", "destroy", f"v{i}")  # from the loop's own thread
        return [(await q.get())["revision"] for _ in range(25)]

    revisions = asyncio.run(main())
    assert revisions == sorted(revisions) and len(set(revisions)) == 25
