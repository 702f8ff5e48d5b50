"""How one write transaction changes the store, written once for the embedded backends.

Each backend provides its `Tables` (rows by key, rows by prefix, lease lookups) inside its
own lock or database transaction; `apply_txn` evaluates the compares, runs one branch and
returns the responses and events, all stamped with the one revision the write will get if
it changes anything. So the memory and SQLite backends agree by construction, and the
conformance suite checks the storage under them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from portside.state.backend import (
    Compare,
    Delete,
    Event,
    EventType,
    Get,
    KeyValue,
    LeaseNotFound,
    Op,
    OpResponse,
    Put,
    check_key,
    check_ops,
    deleted,
)


class Tables(Protocol):
    def row(self, key: str) -> KeyValue | None: ...

    def rows(self, prefix: str) -> list[KeyValue]:
        """Pairs whose key starts with `prefix`, sorted by key."""
        ...

    def write(self, kv: KeyValue, prev: KeyValue | None) -> None: ...

    def remove(self, kv: KeyValue) -> None: ...

    def lease_exists(self, lease: int) -> bool: ...

    def lease_keys(self, lease: int) -> list[KeyValue]: ...


def apply_txn(t: Tables, revision: int, compares: Sequence[Compare], success: Sequence[Op],
              failure: Sequence[Op]) -> tuple[bool, list[OpResponse], list[Event]]:
    """Run a transaction against `t`; `revision` is the one its writes get. Nothing is
    written unless every check passes (bad keys, a key written twice, unknown leases)."""
    for c in compares:
        check_key(c.key)
    check_ops(success)
    check_ops(failure)
    succeeded = all(c.holds(t.row(c.key)) for c in compares)
    ops = success if succeeded else failure
    for op in ops:
        if isinstance(op, Put) and op.lease is not None and not t.lease_exists(op.lease):
            raise LeaseNotFound(op.lease)
    responses: list[OpResponse] = []
    events: list[Event] = []
    for op in ops:
        if isinstance(op, Put):
            prev = t.row(op.key)
            kv = KeyValue(op.key, bytes(op.value),
                          prev.create_revision if prev else revision, revision,
                          prev.version + 1 if prev else 1, op.lease)
            t.write(kv, prev)
            events.append(Event(EventType.PUT, kv, prev, revision))
            responses.append(OpResponse((prev,) if prev else ()))
        elif isinstance(op, Delete):
            gone = _matching(t, op.key, op.prefix)
            events.extend(delete_rows(t, gone, revision))
            responses.append(OpResponse(tuple(gone)))
        elif isinstance(op, Get):
            responses.append(OpResponse(tuple(_matching(t, op.key, op.prefix))))
    return succeeded, responses, events


def delete_rows(t: Tables, rows: list[KeyValue], revision: int) -> list[Event]:
    for kv in rows:
        t.remove(kv)
    return [Event(EventType.DELETE, deleted(kv.key, revision), kv, revision) for kv in rows]


def _matching(t: Tables, key: str, prefix: bool) -> list[KeyValue]:
    if prefix:
        return t.rows(key)
    kv = t.row(key)
    return [kv] if kv else []
