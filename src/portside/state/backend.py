"""The state backend's contract: a revisioned key-value store with transactions, watch and leases.

The model is etcd v3's, so an etcd implementation only adds a class. The store holds keys
(non-empty strings) with byte values and has one revision counter: every write (a put, a
delete that removed something, a transaction with writes) advances it by one, and every key
remembers the revision that created it, the one that last changed it and how many times it
changed (its version; deleting a key resets all three). Each change is also an `Event` in a
history that `watch` reads from, so a watcher can start at any revision still kept and see
every change after it in order; `compact` drops history before a revision. A lease is a
timer that keys can be attached to: when it is revoked or expires, its keys are deleted
(with delete events), which is how a process announces "I am alive" without being trusted
to clean up after itself.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from portside.errors import InvalidArgument, NotFound, PortsideError

# -- data --


@dataclass(frozen=True)
class KeyValue:
    """A key as it is at some revision. `version` counts the puts since it was created."""

    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int | None = None


class EventType(enum.Enum):
    PUT = "put"
    DELETE = "delete"


@dataclass(frozen=True)
class Event:
    """One change. For a delete, `kv` holds only the key and `mod_revision` (the revision of
    the delete); `prev_kv` is the pair before the change (None when a put created the key)."""

    type: EventType
    kv: KeyValue
    prev_kv: KeyValue | None
    revision: int


class Target(enum.Enum):
    VALUE = "value"
    VERSION = "version"
    CREATE_REVISION = "create_revision"
    MOD_REVISION = "mod_revision"


class CompareOp(enum.Enum):
    EQUAL = "=="
    NOT_EQUAL = "!="
    GREATER = ">"
    LESS = "<"


@dataclass(frozen=True)
class Compare:
    """One condition of a transaction on a key's current state. An absent key has version,
    create_revision and mod_revision 0 and matches no value (`Compare.absent(key)` is the
    "create only if missing" condition)."""

    key: str
    target: Target
    op: CompareOp
    operand: int | bytes

    @classmethod
    def absent(cls, key: str) -> Compare:
        return cls(key, Target.CREATE_REVISION, CompareOp.EQUAL, 0)

    @classmethod
    def value_is(cls, key: str, value: bytes) -> Compare:
        return cls(key, Target.VALUE, CompareOp.EQUAL, value)

    @classmethod
    def mod_revision_is(cls, key: str, revision: int) -> Compare:
        return cls(key, Target.MOD_REVISION, CompareOp.EQUAL, revision)

    @classmethod
    def version_is(cls, key: str, version: int) -> Compare:
        return cls(key, Target.VERSION, CompareOp.EQUAL, version)

    def holds(self, kv: KeyValue | None) -> bool:
        """Whether the condition is true of `kv` (the key's current pair, None if absent)."""
        if self.target is Target.VALUE:
            if kv is None:
                return False
            actual: int | bytes = kv.value
        elif kv is None:
            actual = 0
        else:
            actual = getattr(kv, self.target.value)
        operand = self.operand
        if isinstance(actual, bytes) != isinstance(operand, bytes):
            raise InvalidArgument(f"compare on {self.target.value} of {self.key!r} needs "
                                  f"{'bytes' if isinstance(actual, bytes) else 'an int'}, "
                                  f"got {operand!r}")
        if self.op is CompareOp.EQUAL:
            return actual == operand
        if self.op is CompareOp.NOT_EQUAL:
            return actual != operand
        if self.op is CompareOp.GREATER:
            return actual > operand  # type: ignore[operator]  # same type, checked above
        return actual < operand  # type: ignore[operator]


@dataclass(frozen=True)
class Put:
    key: str
    value: bytes
    lease: int | None = None


@dataclass(frozen=True)
class Delete:
    """Delete `key`, or every key starting with it when `prefix` is true."""

    key: str
    prefix: bool = False


@dataclass(frozen=True)
class Get:
    """Read `key`, or every key starting with it when `prefix` is true, inside a transaction."""

    key: str
    prefix: bool = False


Op = Put | Delete | Get


@dataclass(frozen=True)
class OpResponse:
    """What one op of a transaction saw: for a Put the previous pair (if any), for a Delete
    the pairs it deleted, for a Get the pairs it read (sorted by key)."""

    kvs: tuple[KeyValue, ...]


@dataclass(frozen=True)
class TxnResult:
    """`succeeded` tells whether every compare held (so the success ops ran); `revision` is
    the store's revision after the transaction; `responses` has one entry per op run."""

    succeeded: bool
    revision: int
    responses: tuple[OpResponse, ...]


# -- errors --


class InvalidKey(InvalidArgument):
    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"invalid state key {key!r}: {reason}")
        self.key = key


class InvalidTxn(InvalidArgument):
    """A transaction writes one key twice (a put and an overlapping put or delete)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"transaction changes key {key!r} more than once")
        self.key = key


class InvalidRevision(InvalidArgument):
    def __init__(self, revision: int, reason: str) -> None:
        super().__init__(f"revision {revision}: {reason}")
        self.revision = revision


class LeaseNotFound(NotFound):
    def __init__(self, lease: int) -> None:
        super().__init__(f"lease {lease} not found (never granted, revoked or expired)")
        self.lease = lease


class Compacted(PortsideError):
    """History before `compacted` is gone, so changes from `revision` cannot be replayed."""

    http_status = 410

    def __init__(self, revision: int, compacted: int) -> None:
        super().__init__(f"revision {revision} has been compacted: history starts at "
                         f"revision {compacted}")
        self.revision = revision
        self.compacted = compacted


class BackendClosed(PortsideError):
    def __init__(self, what: str) -> None:
        super().__init__(f"state backend {what} is closed")


# -- the contract --


@runtime_checkable
class Watch(Protocol):
    """A stream of events for keys under one prefix, in revision order (events of one
    transaction in the order of its ops), from the revision the watch started at.

    Blocking: `get(timeout)` returns the next event or None (timeout or closed);
    `events(idle_timeout)` iterates until closed or until `idle_timeout` seconds pass
    without an event; plain `for` iterates until closed. Asyncio: `async for event in
    watch` (ends when closed). A watcher that falls behind compacted history gets
    `Compacted` from any of them.
    """

    @property
    def next_revision(self) -> int: ...

    def get(self, timeout: float | None = None) -> Event | None: ...

    def events(self, idle_timeout: float | None = None) -> Iterator[Event]: ...

    def __iter__(self) -> Iterator[Event]: ...

    def __aiter__(self) -> AsyncIterator[Event]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Watch: ...

    def __exit__(self, *exc: object) -> None: ...


@runtime_checkable
class StateBackend(Protocol):
    """get/range read the current state; put/delete/txn write it and return the revision
    after the write; watch replays and follows history; grant/keepalive/revoke manage leases
    (a lease's keys go when it is revoked or `ttl` seconds pass without a keepalive).

    The list-then-watch pattern: `kvs, rev = backend.range("p/")`, then
    `backend.watch("p/", rev + 1)` sees exactly the changes after that snapshot.
    """

    def revision(self) -> int: ...

    def get(self, key: str) -> KeyValue | None: ...

    def range(self, prefix: str) -> tuple[list[KeyValue], int]: ...

    def put(self, key: str, value: bytes, lease: int | None = None) -> int: ...

    def delete(self, key: str) -> int: ...

    def delete_prefix(self, prefix: str) -> int: ...

    def txn(self, compares: Sequence[Compare], success: Sequence[Op],
            failure: Sequence[Op] = ()) -> TxnResult: ...

    def watch(self, prefix: str, start_revision: int | None = None) -> Watch: ...

    def grant(self, ttl: float) -> int: ...

    def keepalive(self, lease: int) -> float: ...

    def revoke(self, lease: int) -> int: ...

    def compact(self, revision: int) -> None: ...

    def compacted_revision(self) -> int: ...

    def close(self) -> None: ...


# -- checks every implementation makes the same way --


def check_key(key: str) -> None:
    """Keys are non-empty strings without NUL that encode as UTF-8 (so their byte order, in
    which ranges and SQLite sort them, is their code point order)."""
    if not isinstance(key, str) or not key:
        raise InvalidKey(str(key), "keys are non-empty strings")
    check_prefix(key)


def check_prefix(prefix: str) -> None:
    """A prefix may be empty (every key); otherwise the rules of keys apply."""
    if not isinstance(prefix, str):
        raise InvalidKey(str(prefix), "keys are strings")
    if "\x00" in prefix:
        raise InvalidKey(prefix, "contains NUL")
    try:
        prefix.encode()
    except UnicodeEncodeError as exc:
        raise InvalidKey(prefix, "not encodable as UTF-8") from exc


def check_value(key: str, value: bytes) -> None:
    if not isinstance(value, bytes | bytearray):
        raise InvalidArgument(f"value of state key {key!r} must be bytes, got "
                              f"{type(value).__name__}")


def check_ops(ops: Sequence[Op]) -> None:
    """Validate keys and refuse a transaction that writes one key twice (etcd's rule, so
    every key changes at most once per revision)."""
    puts: set[str] = set()
    deletes: list[Delete] = []
    for op in ops:
        if isinstance(op, Put):
            check_key(op.key)
            check_value(op.key, op.value)
            if op.key in puts:
                raise InvalidTxn(op.key)
            puts.add(op.key)
        elif isinstance(op, Delete):
            (check_prefix if op.prefix else check_key)(op.key)
            deletes.append(op)
        elif isinstance(op, Get):
            (check_prefix if op.prefix else check_key)(op.key)
        else:
            raise InvalidArgument(f"not a state op: {op!r}")
    for d in deletes:
        for key in puts:
            if key.startswith(d.key) if d.prefix else key == d.key:
                raise InvalidTxn(key)


def check_ttl(ttl: float) -> None:
    if not isinstance(ttl, int | float) or not ttl > 0:
        raise InvalidArgument(f"lease ttl must be a positive number of seconds, got {ttl!r}")


def check_start(start_revision: int | None) -> None:
    if start_revision is not None and start_revision < 1:
        raise InvalidRevision(start_revision, "watches start at revision 1 or later")


def deleted(key: str, revision: int) -> KeyValue:
    """The `kv` of a delete event: the key and the revision that deleted it."""
    return KeyValue(key, b"", 0, revision, 0, None)
