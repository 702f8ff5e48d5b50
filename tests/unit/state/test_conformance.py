"""One conformance suite for every `StateBackend` (the `impl` fixture lists them).

What a user of the backend relies on: reads, revisions and versions, prefix ranges, atomic
compare-and-swap (also between threads and between instances on one file), watch from the
past and from now, compaction, and leases whose keys go, with events, when they end.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from portside.errors import InvalidArgument
from portside.state import (
    BackendClosed,
    Compacted,
    Compare,
    CompareOp,
    Delete,
    Event,
    EventType,
    Get,
    InvalidKey,
    InvalidRevision,
    InvalidTxn,
    KeyValue,
    LeaseNotFound,
    Put,
    StateBackend,
    Target,
    Watch,
)

from .conftest import Impl


def drain(w: Watch, idle: float = 0.3) -> list[Event]:
    return list(w.events(idle_timeout=idle))


def eventually(predicate: object, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


# -- reads and writes --


def test_put_get_delete(backend: StateBackend) -> None:
    base = backend.revision()
    assert backend.get("a") is None
    r1 = backend.put("a", b"1")
    assert r1 == base + 1
    assert backend.get("a") == KeyValue("a", b"1", r1, r1, 1, None)
    r2 = backend.delete("a")
    assert r2 == base + 2 and backend.get("a") is None
    assert backend.delete("a") == r2  # nothing deleted: no new revision
    assert backend.revision() == r2


def test_versions_and_revisions(backend: StateBackend) -> None:
    revs = [backend.put("k", str(i).encode()) for i in range(3)]
    assert revs == sorted(revs) and len(set(revs)) == 3
    kv = backend.get("k")
    assert kv is not None
    assert (kv.value, kv.create_revision, kv.mod_revision, kv.version) == (b"2", revs[0],
                                                                           revs[2], 3)
    backend.put("other", b"")
    assert backend.get("k") == kv  # other keys do not change it
    backend.delete("k")
    again = backend.put("k", b"new")
    kv = backend.get("k")
    assert kv is not None and (kv.create_revision, kv.version) == (again, 1)


def test_range_sorted_and_prefix_isolated(backend: StateBackend) -> None:
    for key in ["b", "a/2", "ab", "a/1", "a", "a/1/x", "é", "a\u0800"]:
        backend.put(key, key.encode())
    kvs, rev = backend.range("a/")
    assert [kv.key for kv in kvs] == ["a/1", "a/1/x", "a/2"]
    assert rev == backend.revision()
    everything, _ = backend.range("")
    assert [kv.key for kv in everything] == sorted(["b", "a/2", "ab", "a/1", "a", "a/1/x",
                                                    "é", "a\u0800"])
    assert [kv.key for kv in backend.range("a")[0]] == ["a", "a/1", "a/1/x", "a/2", "ab",
                                                        "a\u0800"]
    assert backend.range("zzz")[0] == []


def test_delete_prefix_is_one_revision(backend: StateBackend) -> None:
    for key in ["a/1", "a/2", "ab", "b"]:
        before = backend.put(key, b"")
    rev = backend.delete_prefix("a/")
    assert rev == before + 1
    assert [kv.key for kv in backend.range("")[0]] == ["ab", "b"]
    assert backend.delete_prefix("a/") == rev


@pytest.mark.parametrize("key", ["", "a\x00b", "\ud800"])
def test_bad_keys_are_refused(backend: StateBackend, key: str) -> None:
    base = backend.revision()
    with pytest.raises(InvalidKey, match="invalid state key"):
        backend.put(key, b"x")
    with pytest.raises(InvalidKey):
        backend.get(key)
    assert backend.revision() == base


def test_bad_values_and_ttls_are_refused(backend: StateBackend) -> None:
    with pytest.raises(InvalidArgument, match="must be bytes"):
        backend.put("a", "text")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="positive"):
        backend.grant(0)
    with pytest.raises(InvalidRevision):
        backend.watch("", 0)


# -- transactions --


def test_txn_create_if_absent(backend: StateBackend) -> None:
    base = backend.revision()
    first = backend.txn([Compare.absent("lock")], [Put("lock", b"me")], [Get("lock")])
    assert first.succeeded and first.revision == base + 1
    assert first.responses[0].kvs == ()
    second = backend.txn([Compare.absent("lock")], [Put("lock", b"you")], [Get("lock")])
    assert not second.succeeded and second.revision == base + 1
    assert second.responses[0].kvs[0].value == b"me"


def test_txn_compares_every_target(backend: StateBackend) -> None:
    rev = backend.put("k", b"v1")
    backend.put("k", b"v2")

    def holds(*compares: Compare) -> bool:
        return backend.txn(compares, [], []).succeeded

    assert holds(Compare.value_is("k", b"v2"))
    assert not holds(Compare.value_is("k", b"v1"))
    assert holds(Compare.version_is("k", 2))
    assert holds(Compare("k", Target.CREATE_REVISION, CompareOp.EQUAL, rev))
    assert holds(Compare.mod_revision_is("k", rev + 1))
    assert holds(Compare("k", Target.MOD_REVISION, CompareOp.GREATER, rev))
    assert holds(Compare("k", Target.VERSION, CompareOp.LESS, 3))
    assert holds(Compare("k", Target.VALUE, CompareOp.NOT_EQUAL, b"x"))
    assert not holds(Compare.version_is("k", 2), Compare.absent("k"))
    assert holds(Compare.absent("missing"), Compare.version_is("missing", 0))
    assert not holds(Compare.value_is("missing", b""))
    with pytest.raises(InvalidArgument, match="needs an int"):
        holds(Compare("k", Target.VERSION, CompareOp.EQUAL, b"2"))


def test_txn_runs_one_branch_atomically(backend: StateBackend) -> None:
    backend.put("a", b"1")
    backend.put("old/1", b"")
    before = backend.put("old/2", b"")
    r = backend.txn([Compare.value_is("a", b"1")],
                    [Put("a", b"2"), Put("b", b"new"), Delete("old/", prefix=True), Get("b")],
                    [Put("failed", b"")])
    assert r.succeeded and r.revision == before + 1
    prev_a, created_b, deleted_old, read_b = r.responses
    assert prev_a.kvs[0].value == b"1" and created_b.kvs == ()
    assert [kv.key for kv in deleted_old.kvs] == ["old/1", "old/2"]
    assert read_b.kvs[0].value == b"new"  # ops see the ops before them
    kvs, _ = backend.range("")
    assert {kv.key: kv.mod_revision for kv in kvs} == {"a": r.revision, "b": r.revision}
    r = backend.txn([Compare.value_is("a", b"1")], [Put("never", b"")], [Put("failed", b"")])
    assert not r.succeeded and backend.get("never") is None and backend.get("failed")


def test_txn_refusals_write_nothing(backend: StateBackend) -> None:
    base = backend.put("a", b"")
    with pytest.raises(InvalidTxn, match="'x' more than once"):
        backend.txn([], [Put("x", b"1"), Put("x", b"2")])
    with pytest.raises(InvalidTxn):
        backend.txn([], [Put("p/x", b"1"), Delete("p/", prefix=True)])
    with pytest.raises(LeaseNotFound, match="lease 999"):
        backend.txn([], [Put("y", b"1"), Put("z", b"1", lease=999)])
    with pytest.raises(InvalidKey):
        backend.txn([], [Put("ok", b""), Put("", b"")])
    assert backend.revision() == base and [kv.key for kv in backend.range("")[0]] == ["a"]


def test_concurrent_create_exactly_one_wins(impl: Impl) -> None:
    backends = [impl.open() for _ in range(4)]
    barrier = threading.Barrier(8)
    wins: list[str] = []

    def contend(b: StateBackend, me: str) -> None:
        barrier.wait()
        if b.txn([Compare.absent("leader")], [Put("leader", me.encode())]).succeeded:
            wins.append(me)

    threads = [threading.Thread(target=contend, args=(backends[i % 4], f"t{i}"))
               for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    kv = backends[0].get("leader")
    assert kv is not None and kv.value == wins[0].encode()


def test_concurrent_cas_increments_are_not_lost(impl: Impl) -> None:
    backends = [impl.open() for _ in range(3)]
    backends[0].put("n", b"0")

    def increment(b: StateBackend) -> None:
        done = 0
        while done < 20:
            kv = b.get("n")
            assert kv is not None
            value = str(int(kv.value) + 1).encode()
            if b.txn([Compare.mod_revision_is("n", kv.mod_revision)], [Put("n", value)]).succeeded:
                done += 1

    threads = [threading.Thread(target=increment, args=(backends[i % 3],)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    kv = backends[0].get("n")
    assert kv is not None and kv.value == b"60" and kv.version == 61


# -- watch --


def test_watch_from_the_past_replays_history(backend: StateBackend) -> None:
    r1 = backend.put("a/x", b"1")
    r2 = backend.put("a/x", b"2")
    r3 = backend.delete("a/x")
    with backend.watch("a/", r1) as w:
        events = drain(w)
    assert [(e.type, e.revision) for e in events] == [(EventType.PUT, r1), (EventType.PUT, r2),
                                                      (EventType.DELETE, r3)]
    assert events[0].prev_kv is None and events[0].kv.version == 1
    assert events[1].prev_kv == events[0].kv and events[1].kv.value == b"2"
    assert events[2].kv == KeyValue("a/x", b"", 0, r3, 0, None)
    assert events[2].prev_kv == events[1].kv
    with backend.watch("a/", r2) as w:
        assert [e.revision for e in drain(w)] == [r2, r3]


def test_watch_from_now_sees_only_new_changes(backend: StateBackend) -> None:
    old = backend.put("k", b"old")
    w = backend.watch("")
    assert w.next_revision == old + 1
    assert w.get(timeout=0.05) is None
    backend.put("k", b"new")
    e = w.get(timeout=5)
    assert e is not None and e.kv.value == b"new" and e.prev_kv is not None
    w.close()


def test_watch_filters_by_prefix(backend: StateBackend) -> None:
    w = backend.watch("a/", backend.revision() + 1)
    for key in ["a/1", "ab", "a", "b/a/1", "a/2/3"]:
        backend.put(key, b"")
    rev = backend.delete_prefix("a")
    events = drain(w)
    assert [(e.type.value, e.kv.key) for e in events] == [
        ("put", "a/1"), ("put", "a/2/3"), ("delete", "a/1"), ("delete", "a/2/3")]
    assert events[2].revision == events[3].revision == rev


def test_watch_of_a_txn_keeps_op_order(backend: StateBackend) -> None:
    rev = backend.put("z", b"") + 1
    w = backend.watch("", rev)
    backend.txn([], [Put("m", b""), Delete("z"), Put("a", b"")])
    events = drain(w)
    assert [(e.type.value, e.kv.key, e.revision) for e in events] == [
        ("put", "m", rev), ("delete", "z", rev), ("put", "a", rev)]


def test_watch_wakes_a_blocked_reader(backend: StateBackend) -> None:
    w = backend.watch("k")
    got: list[Event] = []
    reader = threading.Thread(target=lambda: got.extend(w.events(idle_timeout=5)))
    reader.start()
    time.sleep(0.1)
    backend.put("k", b"1")
    eventually(lambda: len(got) == 1)
    w.close()
    reader.join(timeout=5)
    assert not reader.is_alive() and got[0].kv.value == b"1"


def test_watch_from_the_future_waits_for_it(backend: StateBackend) -> None:
    w = backend.watch("", backend.revision() + 3)
    backend.put("a", b"")
    backend.put("a", b"")
    assert w.get(timeout=0.05) is None
    third = backend.put("a", b"3")
    e = w.get(timeout=5)
    assert e is not None and e.revision == third and e.kv.value == b"3"


def test_async_watch(backend: StateBackend) -> None:
    async def main() -> list[Event]:
        w = backend.watch("job/")
        got: list[Event] = []
        writer = threading.Timer(0.1, lambda: [backend.put(f"job/{i}", b"") for i in range(3)])
        writer.start()

        async def collect() -> None:
            async for e in w:
                got.append(e)
                if len(got) == 3:
                    w.close()

        await asyncio.wait_for(collect(), 10)
        writer.join()
        return got

    events = asyncio.run(main())
    assert [e.kv.key for e in events] == ["job/0", "job/1", "job/2"]


def test_closing_the_backend_ends_watches(impl: Impl) -> None:
    b = impl.open()
    w = b.watch("")
    b.close()
    assert w.get(timeout=1) is None and list(w) == []
    with pytest.raises(BackendClosed):
        b.put("a", b"")


# -- compaction --


def test_compaction_drops_history_not_state(backend: StateBackend) -> None:
    revs = [backend.put("k", str(i).encode()) for i in range(5)]
    backend.compact(revs[3])
    assert backend.compacted_revision() == revs[3]
    kv = backend.get("k")
    assert kv is not None and kv.value == b"4" and kv.version == 5
    with pytest.raises(Compacted, match=f"revision {revs[2]} has been compacted") as info:
        backend.watch("", revs[2])
    assert info.value.revision == revs[2] and info.value.compacted == revs[3]
    with backend.watch("", revs[3]) as w:
        assert [e.revision for e in drain(w)] == revs[3:]
    backend.compact(revs[1])  # older than what is compacted: nothing to do
    assert backend.compacted_revision() == revs[3]
    with pytest.raises(InvalidRevision, match="future"):
        backend.compact(revs[4] + 1)


def test_a_watcher_overtaken_by_compaction_is_told(backend: StateBackend) -> None:
    w = backend.watch("", backend.revision() + 1)
    revs = [backend.put("k", str(i).encode()) for i in range(4)]
    backend.compact(revs[2])
    with pytest.raises(Compacted):
        w.get(timeout=1)


# -- leases --


def test_lease_expiry_deletes_keys_with_events(backend: StateBackend) -> None:
    lease = backend.grant(0.3)
    backend.put("alive/me", b"", lease=lease)
    backend.put("keep", b"")
    kv = backend.get("alive/me")
    assert kv is not None and kv.lease == lease
    w = backend.watch("alive/")
    e = w.get(timeout=10)  # nobody writes: the reaper expires it
    assert e is not None and e.type is EventType.DELETE and e.kv.key == "alive/me"
    assert e.prev_kv == kv
    assert backend.get("alive/me") is None and backend.get("keep") is not None
    with pytest.raises(LeaseNotFound):
        backend.keepalive(lease)
    with pytest.raises(LeaseNotFound):
        backend.put("alive/again", b"", lease=lease)


def test_keepalive_keeps_keys(backend: StateBackend) -> None:
    lease = backend.grant(0.5)
    backend.put("hb", b"", lease=lease)
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        assert backend.keepalive(lease) >= 0.5  # etcd may round a TTL up
        time.sleep(0.1)
    assert backend.get("hb") is not None
    eventually(lambda: backend.get("hb") is None)


def test_revoke_deletes_keys_in_one_revision(backend: StateBackend) -> None:
    lease = backend.grant(60)
    backend.put("s/a", b"", lease=lease)
    backend.put("s/b", b"", lease=lease)
    backend.put("s/c", b"", lease=lease)
    backend.put("s/c", b"detached")  # a put without the lease detaches the key
    w = backend.watch("s/")
    rev = backend.revoke(lease)
    events = drain(w)
    assert [(e.type, e.kv.key, e.revision) for e in events] == [
        (EventType.DELETE, "s/a", rev), (EventType.DELETE, "s/b", rev)]
    assert [kv.key for kv in backend.range("s/")[0]] == ["s/c"]
    with pytest.raises(LeaseNotFound, match=f"lease {lease} not found"):
        backend.revoke(lease)
    assert backend.revoke(backend.grant(60)) == rev  # no keys: no revision


# -- persistence (backends whose data outlives the process) --


def test_history_and_leases_survive_reopen(impl: Impl) -> None:
    if not impl.persistent:
        pytest.skip(f"{impl.name} keeps nothing across reopen")
    b = impl.open()
    seen = b.watch("", b.revision() + 1)
    b.put("a", b"1")
    b.put("b", b"2")
    lease = b.grant(60)
    rev = b.put("l", b"", lease=lease)
    first = seen.get(timeout=1)
    assert first is not None
    resume_at = first.revision + 1
    b = impl.reopen(b)
    assert b.revision() == rev
    with b.watch("", resume_at) as w:
        assert [e.kv.key for e in drain(w)] == ["b", "l"]
    assert b.revoke(lease) == rev + 1 and b.get("l") is None


def test_an_expired_lease_is_reaped_after_reopen(impl: Impl) -> None:
    if not impl.persistent:
        pytest.skip(f"{impl.name} keeps nothing across reopen")
    b = impl.open()
    lease = b.grant(0.2)
    rev = b.put("l", b"", lease=lease)
    b.close()
    time.sleep(0.4)
    b = impl.open()
    assert b.get("l") is None
    with b.watch("", rev + 1) as w:
        events = drain(w)
    assert [(e.type, e.kv.key) for e in events] == [(EventType.DELETE, "l")]


def test_a_second_instance_sees_writes_through_watch(impl: Impl) -> None:
    if not impl.shared:
        pytest.skip(f"{impl.name} is one instance")
    writer, watcher = impl.open(), impl.open()
    w = watcher.watch("x/")
    writer.put("x/1", b"hello")
    e = w.get(timeout=5)
    assert e is not None and e.kv.value == b"hello"
    lease = writer.grant(0.2)
    writer.put("x/2", b"", lease=lease)
    writer.close()  # its reaper is gone: the watcher's process expires the lease
    kinds = []
    for ev in w.events(idle_timeout=5):
        kinds.append((ev.type, ev.kv.key))
        if ev.type is EventType.DELETE:
            break
    assert kinds == [(EventType.PUT, "x/2"), (EventType.DELETE, "x/2")]
