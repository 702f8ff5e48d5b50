"""The in-memory state backend: for tests and for parts that need no persistence.

Everything lives in one process under one lock: a dict of pairs with a sorted key list for
prefix ranges, the history as a list in revision order, and leases with deadlines on the
monotonic clock. Due leases are expired at the start of every call and by a reaper thread
(started with the first lease), so their keys go on time even when nobody calls.
"""

from __future__ import annotations

import bisect
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from portside.state.apply import apply_txn, delete_rows
from portside.state.backend import (
    BackendClosed,
    Compacted,
    Compare,
    Event,
    InvalidRevision,
    KeyValue,
    LeaseNotFound,
    Op,
    StateBackend,
    TxnResult,
    check_key,
    check_prefix,
    check_start,
    check_ttl,
)
from portside.state.embedded import EmbeddedBackend
from portside.state.watch import HistoryWatch

WINDOW = 1000  # revisions a watch reads at a time


@dataclass
class _Lease:
    ttl: float
    deadline: float
    keys: set[str] = field(default_factory=set)


class _Tables:
    """`apply.Tables` over the backend's dict, key list and lease sets."""

    def __init__(self, b: MemoryBackend) -> None:
        self.b = b

    def row(self, key: str) -> KeyValue | None:
        return self.b._kv.get(key)

    def rows(self, prefix: str) -> list[KeyValue]:
        keys = self.b._keys
        i = bisect.bisect_left(keys, prefix)
        out = []
        while i < len(keys) and keys[i].startswith(prefix):
            out.append(self.b._kv[keys[i]])
            i += 1
        return out

    def write(self, kv: KeyValue, prev: KeyValue | None) -> None:
        if prev is None:
            bisect.insort(self.b._keys, kv.key)
        elif prev.lease is not None:
            self.b._leases[prev.lease].keys.discard(kv.key)
        if kv.lease is not None:
            self.b._leases[kv.lease].keys.add(kv.key)
        self.b._kv[kv.key] = kv

    def remove(self, kv: KeyValue) -> None:
        del self.b._kv[kv.key]
        del self.b._keys[bisect.bisect_left(self.b._keys, kv.key)]
        if kv.lease is not None and kv.lease in self.b._leases:
            self.b._leases[kv.lease].keys.discard(kv.key)

    def lease_exists(self, lease: int) -> bool:
        return lease in self.b._leases

    def lease_keys(self, lease: int) -> list[KeyValue]:
        return [self.b._kv[k] for k in sorted(self.b._leases[lease].keys)]


class MemoryBackend(EmbeddedBackend):
    """A `StateBackend` in this process's memory; thread-safe."""

    poll_interval: float | None = None

    def __init__(self) -> None:
        super().__init__("state-memory-leases", reap_interval=1.0)
        self._kv: dict[str, KeyValue] = {}
        self._keys: list[str] = []
        self._history: list[Event] = []
        self._history_revisions: list[int] = []  # parallel to _history, for bisect
        self._revision = 0
        self._compacted = 0
        self._leases: dict[int, _Lease] = {}
        self._lease_ids = itertools.count(1)
        self._tables = _Tables(self)

    def _open(self) -> None:
        """Checks every call makes: not closed, and due leases expired first."""
        if self._closed:
            raise BackendClosed("in memory")
        self._expire(time.monotonic())

    def _commit(self, events: list[Event]) -> int:
        if events:
            self._revision += 1
            self._history.extend(events)
            self._history_revisions.extend(e.revision for e in events)
            self.notifier.notify()
        return self._revision

    def _expire(self, now: float) -> None:
        for lease_id, lease in list(self._leases.items()):
            if lease.deadline <= now:
                self._revoke_locked(lease_id)

    def _revoke_locked(self, lease: int) -> int:
        rows = self._tables.lease_keys(lease)
        del self._leases[lease]
        return self._commit(delete_rows(self._tables, rows, self._revision + 1))

    def _reap(self) -> float | None:
        with self._lock:
            if self._closed:
                raise BackendClosed("in memory")
            now = time.monotonic()
            self._expire(now)
            deadlines = [lease.deadline for lease in self._leases.values()]
            return min(deadlines) - now if deadlines else None

    # -- reads --

    def revision(self) -> int:
        with self._lock:
            self._open()
            return self._revision

    def get(self, key: str) -> KeyValue | None:
        check_key(key)
        with self._lock:
            self._open()
            return self._kv.get(key)

    def range(self, prefix: str) -> tuple[list[KeyValue], int]:
        check_prefix(prefix)
        with self._lock:
            self._open()
            return self._tables.rows(prefix), self._revision

    # -- writes --

    def txn(self, compares: Sequence[Compare], success: Sequence[Op],
            failure: Sequence[Op] = ()) -> TxnResult:
        with self._lock:
            self._open()
            ok, responses, events = apply_txn(self._tables, self._revision + 1, compares,
                                              success, failure)
            return TxnResult(ok, self._commit(events), tuple(responses))

    # -- watch and history --

    def watch(self, prefix: str, start_revision: int | None = None) -> HistoryWatch:
        check_prefix(prefix)
        check_start(start_revision)
        with self._lock:
            self._open()
            start = self._revision + 1 if start_revision is None else start_revision
            if start < self._compacted:
                raise Compacted(start, self._compacted)
            w = HistoryWatch(self, prefix, start)
            self._watches.add(w)
            return w

    def read_history(self, prefix: str, start: int) -> tuple[list[Event], int]:
        with self._lock:
            if self._closed:
                raise BackendClosed("in memory")
            if start < self._compacted:
                raise Compacted(start, self._compacted)
            hi = min(self._revision, start + WINDOW - 1)
            if hi < start:
                return [], start
            lo_i = bisect.bisect_left(self._history_revisions, start)
            hi_i = bisect.bisect_right(self._history_revisions, hi)
            return ([e for e in self._history[lo_i:hi_i] if e.kv.key.startswith(prefix)],
                    hi + 1)

    def compact(self, revision: int) -> None:
        with self._lock:
            self._open()
            if revision > self._revision:
                raise InvalidRevision(revision, f"is in the future (the store is at "
                                                f"{self._revision})")
            if revision <= self._compacted:
                return
            self._compacted = revision
            i = bisect.bisect_left(self._history_revisions, revision)
            del self._history[:i]
            del self._history_revisions[:i]
            self.notifier.notify()  # watchers behind it learn they are compacted

    def compacted_revision(self) -> int:
        with self._lock:
            return self._compacted

    # -- leases --

    def grant(self, ttl: float) -> int:
        check_ttl(ttl)
        with self._lock:
            self._open()
            lease = next(self._lease_ids)
            self._leases[lease] = _Lease(float(ttl), time.monotonic() + ttl)
        self._reaper.start()
        self._reaper.poke()
        return lease

    def keepalive(self, lease: int) -> float:
        with self._lock:
            self._open()
            held = self._leases.get(lease)
            if held is None:
                raise LeaseNotFound(lease)
            held.deadline = time.monotonic() + held.ttl
            return held.ttl

    def revoke(self, lease: int) -> int:
        with self._lock:
            self._open()
            if lease not in self._leases:
                raise LeaseNotFound(lease)
            return self._revoke_locked(lease)


if TYPE_CHECKING:
    _conforms: type[StateBackend] = MemoryBackend
