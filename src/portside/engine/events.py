"""Events (`docker events`): every state change, kept in a ring for `since` and fanned out.

An event is Docker's JSON message: Type, Action, Actor{ID, Attributes}, scope, time,
timeNano (plus the legacy status/id/from of container events). Subscribers are asyncio
queues; publishing never blocks (a slow subscriber drops what it cannot keep).
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any

KEEP = 1024


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
        if key == "image" and attrs.get("image") not in values:
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
    def __init__(self) -> None:
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=KEEP)
        self.subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self.loop: asyncio.AbstractEventLoop | None = None

    def publish(self, kind: str, action: str, actor_id: str,
                attributes: dict[str, str] | None = None) -> dict[str, Any]:
        """Record one event; safe to call from worker threads of the daemon."""
        now = time.time_ns()
        event: dict[str, Any] = {"Type": kind, "Action": action,
                                 "Actor": {"ID": actor_id, "Attributes": dict(attributes or {})},
                                 "scope": "local", "time": now // 10**9, "timeNano": now}
        if kind == "container":
            event.update(status=action, id=actor_id, **{"from": (attributes or {}).get("image", "")})
        loop = self.loop
        if loop is not None and loop.is_running():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                self._deliver(event)
            else:
                loop.call_soon_threadsafe(self._deliver, event)
        else:
            self._deliver(event)
        return event

    def _deliver(self, event: dict[str, Any]) -> None:
        self.recent.append(event)
        for q in list(self.subscribers):
            if q.qsize() < 10000:
                q.put_nowait(event)

    def since(self, since: float) -> list[dict[str, Any]]:
        return [e for e in self.recent if e["timeNano"] >= since * 1e9]

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        self.subscribers.discard(q)
