"""Random sequences of operations give the same visible state and the same event stream in
every backend and in a plain-dict model of etcd's rules."""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portside.state import (
    Compare,
    Event,
    EventType,
    KeyValue,
    LeaseNotFound,
    MemoryBackend,
    Put,
    SqliteBackend,
    StateBackend,
    Watch,
)

KEYS = st.sampled_from(["a", "a/", "a/b", "a/c", "ab", "b", "b/a"])
PREFIXES = st.sampled_from(["", "a", "a/", "b/", "c"])
VALUES = st.binary(max_size=3)

KINDS = st.sampled_from(["put", "delete", "delete_prefix", "cas", "grant", "put_lease",
                         "revoke", "compact"])


@dataclass(frozen=True)
class Step:
    """One random operation; each kind uses the fields it needs: put `key`=`value`; delete
    `key`; delete_prefix `prefix`; cas: put `other`=`value` if `key` has version `n`; grant;
    put_lease `key`=`value` with lease number `n`; revoke lease number `n`; compact to `n`
    revisions before the current one."""

    kind: str
    key: str
    value: bytes
    n: int
    other: str
    prefix: str


STEPS = st.builds(Step, KINDS, KEYS, VALUES, st.integers(0, 3), KEYS, PREFIXES)


@dataclass
class Model:
    """etcd's rules over a dict: what every backend must agree with."""

    kv: dict[str, KeyValue] = field(default_factory=dict)
    revision: int = 0
    compacted: int = 0
    granted: int = 0  # leases are named by their index in grant order
    live: set[int] = field(default_factory=set)
    events: list[Event] = field(default_factory=list)

    def _put(self, key: str, value: bytes, lease: int | None, rev: int) -> Event:
        prev = self.kv.get(key)
        kv = KeyValue(key, value, prev.create_revision if prev else rev, rev,
                      prev.version + 1 if prev else 1, lease)
        self.kv[key] = kv
        return Event(EventType.PUT, kv, prev, rev)

    def _delete(self, keys: list[str], rev: int) -> list[Event]:
        out = []
        for key in sorted(keys):
            prev = self.kv.pop(key)
            out.append(Event(EventType.DELETE, KeyValue(key, b"", 0, rev, 0, None), prev, rev))
        return out

    def commit(self, events: list[Event]) -> None:
        if events:
            self.revision += 1
            self.events.extend(events)

    def apply(self, op: Step) -> None:
        rev = self.revision + 1
        kind = op.kind
        if kind == "put":
            self.commit([self._put(op.key, op.value, None, rev)])
        elif kind == "delete":
            self.commit(self._delete([k for k in self.kv if k == op.key], rev))
        elif kind == "delete_prefix":
            self.commit(self._delete([k for k in self.kv if k.startswith(op.prefix)], rev))
        elif kind == "cas":
            cur = self.kv.get(op.key)
            if (cur.version if cur else 0) == op.n:
                self.commit([self._put(op.other, op.value, None, rev)])
        elif kind == "grant":
            self.live.add(self.granted)
            self.granted += 1
        elif kind == "put_lease":
            lease = _pick(self.granted, op.n)
            if lease is not None and lease in self.live:
                self.commit([self._put(op.key, op.value, lease, rev)])
        elif kind == "revoke":
            lease = _pick(self.granted, op.n)
            if lease is not None and lease in self.live:
                self.live.discard(lease)
                self.commit(self._delete([k for k, v in self.kv.items() if v.lease == lease],
                                         rev))
        elif kind == "compact":
            target = max(self.compacted, self.revision - op.n)
            self.compacted = max(self.compacted, target)


def _pick(granted: int, i: int) -> int | None:
    return i % granted if granted else None


def run(b: StateBackend, op: Step, leases: list[int]) -> None:
    """Apply `op` to a backend the way `Model.apply` does; `leases` is this backend's
    granted ids (appended to by grant)."""
    kind = op.kind
    if kind == "put":
        b.put(op.key, op.value)
    elif kind == "delete":
        b.delete(op.key)
    elif kind == "delete_prefix":
        b.delete_prefix(op.prefix)
    elif kind == "cas":
        b.txn([Compare.version_is(op.key, op.n)], [Put(op.other, op.value)])
    elif kind == "grant":
        leases.append(b.grant(3600))
    elif kind == "put_lease":
        i = _pick(len(leases), op.n)
        if i is not None:
            with contextlib.suppress(LeaseNotFound):  # revoked already
                b.put(op.key, op.value, lease=leases[i])
    elif kind == "revoke":
        i = _pick(len(leases), op.n)
        if i is not None:
            with contextlib.suppress(LeaseNotFound):
                b.revoke(leases[i])
    elif kind == "compact":
        b.compact(max(b.compacted_revision(), b.revision() - op.n))


def by_index(kv: KeyValue | None, leases: list[int]) -> KeyValue | None:
    """`kv` with its lease named by grant order, as the model names it."""
    if kv is None or kv.lease is None:
        return kv
    return dataclasses.replace(kv, lease=leases.index(kv.lease))


def normal(e: Event, leases: list[int]) -> Event:
    return dataclasses.replace(e, kv=by_index(e.kv, leases), prev_kv=by_index(e.prev_kv, leases))


def drain(w: Watch) -> list[Event]:
    out = []
    while (e := w.get(timeout=0)) is not None:
        out.append(e)
    return out


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(STEPS, max_size=30))
def test_backends_agree_with_the_model(ops: list[Step]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        backends: list[StateBackend] = [MemoryBackend(), SqliteBackend(Path(tmp) / "s.db")]
        try:
            model = Model()
            leases: list[list[int]] = [[] for _ in backends]
            watches = [b.watch("", 1) for b in backends]
            prefixed = [b.watch("a/", 1) for b in backends]
            streams: list[list[Event]] = [[] for _ in backends]
            prefixed_streams: list[list[Event]] = [[] for _ in backends]
            for op in ops:
                for i, b in enumerate(backends):
                    run(b, op, leases[i])
                model.apply(op)
                for i, b in enumerate(backends):
                    # drained after every op, so compaction never overtakes them
                    streams[i].extend(normal(e, leases[i]) for e in drain(watches[i]))
                    prefixed_streams[i].extend(normal(e, leases[i]) for e in drain(prefixed[i]))
                    kvs, rev = b.range("")
                    assert rev == model.revision
                    assert [by_index(kv, leases[i]) for kv in kvs] == [
                        model.kv[k] for k in sorted(model.kv)]
                    assert b.compacted_revision() == model.compacted
            for i in range(len(backends)):
                assert streams[i] == model.events
                assert prefixed_streams[i] == [e for e in model.events
                                               if e.kv.key.startswith("a/")]
        finally:
            for b in backends:
                b.close()
