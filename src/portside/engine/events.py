"""Events (`docker events`): every state change, recorded with a revision and fanned out.

An event is Docker's JSON message: Type, Action, Actor{ID, Attributes}, scope, time,
timeNano (plus the legacy status/id/from of container events), and `revision`, the state
backend revision that recorded it (Docker clients ignore the field). Each event is a key
under `events/` in the state backend, so the last `keep` of them survive a daemon restart
and a client can resume after the last revision it saw (`after`). Subscribers are asyncio
queues fed in revision order; publishing never blocks (a slow subscriber drops what it
cannot keep).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from typing import Any

from portside.state import Compacted, Delete, Put, StateBackend

KEEP = 1024
PREFIX = "events/"
# The revision of the newest event trimmed away, so a resume from before it is refused
# rather than silently missing events. Outside PREFIX: not an event itself.
TRIMMED = "events.trimmed"


def matches(event: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    """Docker's events filters: type, event/action, container, image, label, volume, name."""
    actor = event.get("Actor", {})
    attrs = actor.get("Attributes", {})
    for key, values in filters.items():
        if not values:
            continue
        if key == "type" and event.get("Type") not in values:
            return False
        if key in ("event", "action") and not any(
                event.get("Action") == v or str(event.get("Action", "")).split(":")[0] == v
                for v in values):
            return False
        if key == "container" and event.get("Type") == "container" and not any(
                actor.get("ID", "").startswith(v) or attrs.get("name") == v for v in values):
            return False
        if key == "container" and event.get("Type") != "container":
            return False
        if key == "image" and attrs.get("image") not in values:
            return False
        if key == "volume" and (event.get("Type") != "volume" or actor.get("ID") not in values):
            return False
        if key == "label":
            for v in values:
                k, sep, val = v.partition("=")
                if k not in attrs or (sep and attrs[k] != val):
                    return False
    return True


class EventBus:
    """Records events in `backend` (keeping the newest `keep`) and delivers them live."""

    def __init__(self, backend: StateBackend, keep: int = KEEP) -> None:
        self.backend = backend
        self.keep = keep
        self.subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()  # one writer at a time: delivery in revision order
        self._seq = itertools.count()
        self._stored = len(backend.range(PREFIX)[0])

    def publish(self, kind: str, action: str, actor_id: str,
                attributes: dict[str, str] | None = None) -> dict[str, Any]:
        """Record one event; safe to call from worker threads of the daemon."""
        now = time.time_ns()
        event: dict[str, Any] = {"Type": kind, "Action": action,
                                 "Actor": {"ID": actor_id, "Attributes": dict(attributes or {})},
                                 "scope": "local", "time": now // 10**9, "timeNano": now}
        if kind == "container":
            event.update(status=action, id=actor_id, **{"from": (attributes or {}).get("image", "")})
        with self._lock:
            # The key only has to be unique; order comes from the revision.
            key = f"{PREFIX}{now:020d}-{next(self._seq)}"
            event["revision"] = self.backend.put(key, json.dumps(event).encode())
            self._stored += 1
            if self._stored > self.keep + max(1, self.keep // 8):
                self._trim()
            loop = self.loop
            if loop is not None and loop.is_running():
                # Always through the loop's FIFO, also from its own thread, so subscribers
                # get events in revision order whichever thread published them.
                loop.call_soon_threadsafe(self._deliver, event)
            else:
                self._deliver(event)
        return event

    def _trim(self) -> None:
        """Delete the oldest events beyond `keep`, note the newest one deleted, and compact
        the backend's history up to the oldest event kept (events are never read from
        history, and nothing else in the engine's state backend watches it yet)."""
        kvs = sorted(self.backend.range(PREFIX)[0], key=lambda kv: kv.create_revision)
        old, kept = kvs[:len(kvs) - self.keep], kvs[len(kvs) - self.keep:]
        if not old:
            return
        ops: list[Put | Delete] = [Delete(kv.key) for kv in old]
        ops.append(Put(TRIMMED, str(old[-1].create_revision).encode()))
        self.backend.txn([], ops)
        self._stored = len(kept)
        if kept:
            self.backend.compact(kept[0].create_revision)

    def _deliver(self, event: dict[str, Any]) -> None:
        for q in list(self.subscribers):
            if q.qsize() < 10000:
                q.put_nowait(event)

    def stored(self) -> list[dict[str, Any]]:
        """The kept events, oldest first, each with its revision."""
        kvs = sorted(self.backend.range(PREFIX)[0], key=lambda kv: kv.create_revision)
        return [{**json.loads(kv.value), "revision": kv.create_revision} for kv in kvs]

    def since(self, since: float) -> list[dict[str, Any]]:
        return [e for e in self.stored() if e["timeNano"] >= since * 1e9]

    def after(self, revision: int) -> list[dict[str, Any]]:
        """The events recorded after `revision`; `Compacted` if some of them have been
        trimmed away (so a client that resumes never silently misses events)."""
        trimmed = self.backend.get(TRIMMED)
        if trimmed is not None and revision < int(trimmed.value):
            raise Compacted(revision + 1, int(trimmed.value) + 1)
        return [e for e in self.stored() if e["revision"] > revision]

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        self.subscribers.discard(q)
