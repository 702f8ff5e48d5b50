"""What the embedded backends (`memory`, `sqlite`) share around their own storage.

Both serialise calls on one re-entrant lock, hand out `HistoryWatch`es they remember
weakly, wake them through a `Notifier` and expire leases with a `Reaper` thread. This base
holds those, the single-key writes (one-op transactions) and the order of closing: mark
closed, close the watches, stop the reaper, free the backend's own resources, wake waiters.
"""

from __future__ import annotations

import abc
import threading
import weakref
from collections.abc import Sequence

from portside.state.backend import Compare, Delete, Op, Put, TxnResult
from portside.state.watch import HistoryWatch, Notifier, Reaper


class EmbeddedBackend(abc.ABC):
    """The plumbing of a `StateBackend` kept in this process; subclasses add storage."""

    def __init__(self, reaper_name: str, reap_interval: float) -> None:
        self._lock = threading.RLock()
        self._closed = False
        self._watches: weakref.WeakSet[HistoryWatch] = weakref.WeakSet()
        self.notifier = Notifier()
        self._reaper = Reaper(reaper_name, self._reap, max_sleep=reap_interval)

    @abc.abstractmethod
    def _reap(self) -> float | None:
        """Expire due leases; the seconds until the next deadline, None when none is held."""

    def _release(self) -> None:  # noqa: B027 - a hook: most backends hold nothing more
        """Free what the backend holds, once its watches and reaper have stopped."""

    @abc.abstractmethod
    def txn(self, compares: Sequence[Compare], success: Sequence[Op],
            failure: Sequence[Op] = ()) -> TxnResult:
        """Apply `success` if every compare holds, else `failure`, at one revision."""

    def put(self, key: str, value: bytes, lease: int | None = None) -> int:
        return self.txn((), (Put(key, value, lease),)).revision

    def delete(self, key: str) -> int:
        return self.txn((), (Delete(key),)).revision

    def delete_prefix(self, prefix: str) -> int:
        return self.txn((), (Delete(prefix, prefix=True),)).revision

    def forget_watch(self, watch: HistoryWatch) -> None:
        with self._lock:
            self._watches.discard(watch)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            watches = list(self._watches)
        for w in watches:
            w.close()
        self._reaper.stop()
        self._release()
        self.notifier.notify()
