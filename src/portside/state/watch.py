"""Watching a history: the `Watch` handle the embedded backends hand out, and their helpers.

A `HistoryWatch` pulls: it remembers the next revision it has not delivered and asks its
backend's history for events from there, so a slow watcher never loses events (the
history is its buffer) until compaction overtakes it, and then it gets `Compacted` like an
etcd watcher does. Between reads it sleeps on the backend's `Notifier`, which each local
write wakes; a backend whose history other processes also write (SQLite) sets a poll
interval so their writes are seen within it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Protocol

from portside.state.backend import BackendClosed, Event

log = logging.getLogger(__name__)


class Notifier:
    """Wakes waiters when a backend's revision advances: threads wait on a condition,
    asyncio tasks on an `asyncio.Event` set through their own loop."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.seq = 0
        self._async: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}
        self._tokens = 0

    def notify(self) -> None:
        with self._cond:
            self.seq += 1
            self._cond.notify_all()
            waiters = list(self._async.values())
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that loop has been closed
                loop.call_soon_threadsafe(event.set)

    def wait(self, seq: int, timeout: float | None) -> None:
        """Block until a notification after the one numbered `seq`, or `timeout` seconds."""
        with self._cond:
            self._cond.wait_for(lambda: self.seq != seq, timeout)

    def add_async(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> int:
        with self._cond:
            self._tokens += 1
            self._async[self._tokens] = (loop, event)
            return self._tokens

    def remove_async(self, token: int) -> None:
        with self._cond:
            self._async.pop(token, None)


class History(Protocol):
    """What a backend offers its watches."""

    notifier: Notifier
    poll_interval: float | None

    def read_history(self, prefix: str, start: int) -> tuple[list[Event], int]:
        """Events under `prefix` with revisions from `start` up to some revision `hi` (at most
        the current one), and `hi + 1`. Raises `Compacted` if history before `start` is gone,
        `BackendClosed` once the backend is closed."""
        ...

    def forget_watch(self, watch: HistoryWatch) -> None: ...


class HistoryWatch:
    """The `Watch` of the embedded backends (see `portside.state.backend.Watch`). One
    consumer at a time; `close` may come from any thread."""

    def __init__(self, source: History, prefix: str, start: int) -> None:
        self._source = source
        self._prefix = prefix
        self._next = start
        self._buffer: collections.deque[Event] = collections.deque()
        self._closed = False

    @property
    def next_revision(self) -> int:
        """The revision of the next event this watch can deliver (at least)."""
        return self._buffer[0].revision if self._buffer else self._next

    def _fill(self) -> bool:
        if not self._buffer:
            try:
                events, self._next = self._source.read_history(self._prefix, self._next)
            except BackendClosed:
                self._closed = True
                return False
            self._buffer.extend(events)
        return bool(self._buffer)

    def get(self, timeout: float | None = None) -> Event | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        poll = self._source.poll_interval
        notifier = self._source.notifier
        while not self._closed:
            seq = notifier.seq
            if self._fill():
                return self._buffer.popleft()
            if self._closed:
                break
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                return None
            if poll is not None:
                wait = poll if wait is None else min(wait, poll)
            notifier.wait(seq, wait)
        return None

    def events(self, idle_timeout: float | None = None) -> Iterator[Event]:
        while (event := self.get(idle_timeout)) is not None:
            yield event

    def __iter__(self) -> Iterator[Event]:
        return self.events()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        loop = asyncio.get_running_loop()
        poll = self._source.poll_interval
        while not self._closed:
            woken = asyncio.Event()
            token = self._source.notifier.add_async(loop, woken)
            try:
                if self._fill():
                    return self._buffer.popleft()
                if self._closed:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), poll)
            finally:
                self._source.notifier.remove_async(token)
        raise StopAsyncIteration

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._source.forget_watch(self)
            self._source.notifier.notify()

    def __enter__(self) -> HistoryWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Reaper:
    """A daemon thread that expires leases: it calls `reap()` (which returns the seconds until
    the next lease deadline, or None when there is none) and sleeps until then, at most
    `max_sleep`, or until `poke()` (a new or renewed lease)."""

    def __init__(self, name: str, reap: Callable[[], float | None], max_sleep: float) -> None:
        self._name = name
        self._reap = reap
        self._max_sleep = max_sleep
        self._cond = threading.Condition()
        self._stopped = False
        self._poked = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._cond:
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def poke(self) -> None:
        with self._cond:
            self._poked = True
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            try:
                due = self._reap()
            except BackendClosed:
                return
            except Exception:  # a busy database, say: try again at the next round
                log.exception("%s: expiring leases failed", self._name)
                due = self._max_sleep
            wait = self._max_sleep if due is None else min(max(due, 0.005), self._max_sleep)
            with self._cond:
                if not self._poked:
                    self._cond.wait_for(lambda: self._stopped or self._poked, wait)
                self._poked = False
                if self._stopped:
                    return
