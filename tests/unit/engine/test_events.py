"""The event bus: each event gets the revision that recorded it, the newest `keep` survive a
restart (a new bus on the same backend), and a resume from a revision gets exactly what came
after it, or `Compacted` when some of that has been discarded."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from portside.engine.events import EventBus
from portside.state import Compacted, MemoryBackend, SqliteBackend


def test_events_carry_increasing_revisions() -> None:
    bus = EventBus(MemoryBackend())
    bus.publish("volume", "create", "v1", {"driver": "local"})
    bus.publish("container", "start", "c" * 64, {"image": "busybox"})
    first, second = bus.stored()  # waits for the writer
    assert first["revision"] < second["revision"]
    assert first["Actor"] == {"ID": "v1", "Attributes": {"driver": "local"}}
    # Docker's fields are untouched; portside adds one
    assert set(second) == {"Type", "Action", "Actor", "scope", "time", "timeNano", "status",
                           "id", "from", "revision"}
    assert second["status"] == "start" and second["from"] == "busybox"
    assert bus.after(first["revision"]) == [second]
    assert bus.since((second["timeNano"] - 1000) / 1e9) == [second]
    bus.close()


def test_events_survive_a_new_bus_on_the_same_file(tmp_path: Path) -> None:
    bus = EventBus(SqliteBackend(tmp_path / "state.db"))
    for i in range(3):
        bus.publish("volume", "create", f"v{i}")
    bus.close()  # records what is queued, then closes the backend
    again = EventBus(SqliteBackend(tmp_path / "state.db"))
    seen = again.stored()
    assert [e["Actor"]["ID"] for e in seen] == ["v0", "v1", "v2"]
    again.publish("volume", "destroy", "v0")
    later = again.stored()[-1]
    assert later["revision"] > seen[-1]["revision"]
    assert again.after(seen[0]["revision"]) == [*seen[1:], later]
    again.close()


def test_only_the_newest_are_kept_and_a_resume_from_before_them_is_refused() -> None:
    backend = MemoryBackend()
    bus = EventBus(backend, keep=8)
    for i in range(40):
        bus.publish("volume", "create", f"v{i}")
    kept = bus.stored()
    assert 8 <= len(kept) <= 9
    assert [e["Actor"]["ID"] for e in kept] == [f"v{i}" for i in range(40 - len(kept), 40)]
    assert bus.after(kept[-3]["revision"]) == kept[-2:]
    with pytest.raises(Compacted) as info:
        bus.after(kept[0]["revision"] - 10)
    assert info.value.compacted > kept[0]["revision"] - 10
    assert backend.compacted_revision() == kept[0]["revision"]  # history does not grow
    bus.close()


def test_live_subscribers_get_events_in_revision_order() -> None:
    async def main() -> list[dict[str, Any]]:
        bus = EventBus(MemoryBackend())
        bus.loop = asyncio.get_running_loop()
        q = bus.subscribe()
        await asyncio.gather(*[asyncio.to_thread(bus.publish, "volume", "create", f"v{i}")
                               for i in range(20)])
        for i in range(5):
            bus.publish("volume", "destroy", f"v{i}")  # from the loop's own thread
        got = [await asyncio.wait_for(q.get(), 10) for _ in range(25)]
        bus.close()
        return got

    got = asyncio.run(main())
    revisions = [e["revision"] for e in got]
    assert revisions == sorted(revisions) and len(set(revisions)) == 25
    assert [e["Action"] for e in got[20:]] == ["destroy"] * 5


def test_an_event_after_close_is_dropped_not_raised() -> None:
    bus = EventBus(MemoryBackend())
    bus.close()
    bus.publish("volume", "create", "late")  # a late monitor thread must not crash
