"""Events (`docker events`): every state change, recorded with a revision and fanned out.

An event is Docker's JSON message: Type, Action, Actor{ID, Attributes}, scope, time,
timeNano (plus the legacy status/id/from of container events), and `revision`, the state
backend revision that recorded it (Docker clients ignore the field). Each event is a key
under `events/` in the state backend, so the last `keep` of them survive a daemon restart
and a client can resume after the last revision it saw (`after`).

Publishing never blocks: the caller (a container's start, say) only queues the event; one
writer thread records the events in publishing order (a SQLite commit each, off the
`run` path) and then hands them to the subscribers, asyncio queues fed in revision order
(a slow subscriber drops what it cannot keep). Reads of the kept events wait for the queue
first, so an action's event is there as soon as the action has returned.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import logging
import threading
import time
from typing import Any

from portside.state import Compacted, Delete, Put, StateBackend

log = logging.getLogger(__name__)

KEEP = 1024
PREFIX = "events/"
# The revision of the newest event trimmed away, so a resume from before it is refused
# rather than silently missing events. Outside PREFIX: not an event itself.
TRIMMED = "events.trimmed"


def matches(event: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    """Docker's events filters: type, event/action, container, image, label, volume,
    network, name."""
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
        if key == "image" and event.get("Type") == "image":
            if not any(actor.get("ID") == v or attrs.get("name") == v for v in values):
                return False
        elif key == "image" and attrs.get("image") not in values:
            return False
        if key == "volume" and (event.get("Type") != "volume" or actor.get("ID") not in values):
            return False
        if key == "network" and not any(
                actor.get("ID", "").startswith(v) or attrs.get("name") == v for v in values):
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
        self._seq = itertools.count()
        self._stored = len(backend.range(PREFIX)[0])
        self._cond = threading.Condition()
        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self._busy = False  # the writer holds an event it has not delivered yet
        self._closed = False
        self._writer: threading.Thread | None = None

    def publish(self, kind: str, action: str, actor_id: str,
                attributes: dict[str, str] | None = None) -> None:
        """Queue one event for recording and delivery; safe from any thread, never blocks."""
        now = time.time_ns()
        event: dict[str, Any] = {"Type": kind, "Action": action,
                                 "Actor": {"ID": actor_id, "Attributes": dict(attributes or {})},
                                 "scope": "local", "time": now // 10**9, "timeNano": now}
        if kind == "container":
            event.update(status=action, id=actor_id, **{"from": (attributes or {}).get("image", "")})
        elif kind == "image":  # dockerd fills the legacy status and id of image events too
            event.update(status=action, id=actor_id)
        with self._cond:
            if self._closed:
                log.warning("event after close, not recorded: %s %s %s", kind, action, actor_id)
                return
            self._queue.append(event)
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_events, name="events",
                                                daemon=True)
                self._writer.start()
            self._cond.notify_all()

    def _write_events(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queue) or self._closed)
                if not self._queue:
                    return  # closed, and everything written
                event = self._queue.popleft()
                self._busy = True
            try:
                self._record(event)
            except Exception:  # the daemon goes on; the event is lost, and says so
                log.exception("recording event %s %s failed", event["Type"], event["Action"])
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _record(self, event: dict[str, Any]) -> None:
        # The key only has to be unique; the order is the revision's.
        key = f"{PREFIX}{event['timeNano']:020d}-{next(self._seq)}"
        event["revision"] = self.backend.put(key, json.dumps(event).encode())
        self._stored += 1
        if self._stored > self.keep + max(1, self.keep // 8):
            self._trim()
        loop = self.loop
        if loop is not None and loop.is_running():
            # Through the loop's FIFO: subscribers get events in revision order.
            loop.call_soon_threadsafe(self._deliver, event)
        else:
            self._deliver(event)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every event published so far is recorded."""
        with self._cond:
            self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def close(self) -> None:
        """Record what is queued, then close the backend."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            writer = self._writer
        if writer is not None:
            writer.join(timeout=10)
        self.backend.close()

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
        self.flush()
        kvs = sorted(self.backend.range(PREFIX)[0], key=lambda kv: kv.create_revision)
        return [{**json.loads(kv.value), "revision": kv.create_revision} for kv in kvs]

    def since(self, since: float) -> list[dict[str, Any]]:
        return [e for e in self.stored() if e["timeNano"] >= since * 1e9]

    def after(self, revision: int) -> list[dict[str, Any]]:
        """The events recorded after `revision`; `Compacted` if some of them have been
        trimmed away (so a client that resumes never silently misses events)."""
        self.flush()
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
