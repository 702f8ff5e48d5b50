"""The engine's records in the state backend: containers (with their unique names), execs
and volumes, against the in-memory backend; the name race across processes against SQLite."""

from __future__ import annotations

import json
import multiprocessing
import threading
from pathlib import Path

import pytest

from portside.engine.state import (
    Container,
    NameInUse,
    NoSuchContainer,
    StateStore,
    new_state,
)
from portside.engine.volumes import NoSuchVolume, VolumeInUse, VolumeStore
from portside.errors import InvalidArgument, NotFound
from portside.state import Compacted, MemoryBackend, SqliteBackend, StateBackend


def _container(cid: str, name: str, created: str = "2024-01-01T00:00:00Z") -> Container:
    return Container(cid, name, created, "busybox", "sha256:" + "f" * 64,
                     {"Cmd": ["true"]}, {"NetworkMode": "none"}, new_state())


def _keys(backend: StateBackend, prefix: str = "") -> list[str]:
    return [kv.key for kv in backend.range(prefix)[0]]


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend()


@pytest.fixture
def store(backend: MemoryBackend) -> StateStore:
    return StateStore(backend)


A = "a" * 64
B = "b" * 64


def test_a_container_is_one_record_and_one_name_key(store: StateStore,
                                                    backend: MemoryBackend) -> None:
    c = _container(A, "web")
    store.add(c)
    assert _keys(backend) == [f"containers/{A}", "names/web"]
    assert backend.get("names/web").value == A.encode()
    doc = json.loads(backend.get(f"containers/{A}").value)
    assert doc["name"] == "web" and doc["host_config"] == {"NetworkMode": "none"}
    assert store.get(A) == c
    assert store.get("web") == c and store.get("/web") == c and store.get("aaa") == c
    assert store.names() == {"web"}


def test_lookups_and_their_errors(store: StateStore) -> None:
    store.add(_container("ab" + "0" * 62, "first"))
    store.add(_container("ac" + "0" * 62, "second"))
    assert store.get("ab").name == "first"
    with pytest.raises(InvalidArgument, match="multiple containers found"):
        store.get("a")
    with pytest.raises(NoSuchContainer, match="No such container: zz"):
        store.get("zz")
    with pytest.raises(NoSuchContainer):
        store.get("/")
    with pytest.raises(InvalidArgument, match="empty"):
        store.get("  ")


def test_a_taken_name_is_refused_with_its_holder(store: StateStore,
                                                 backend: MemoryBackend) -> None:
    store.add(_container(A, "web"))
    with pytest.raises(NameInUse, match=f'"/web" is already in use by container "{A}"'):
        store.add(_container(B, "web"))
    assert _keys(backend, "containers/") == [f"containers/{A}"]  # nothing half-written


def test_all_is_newest_first(store: StateStore) -> None:
    store.add(_container(A, "old", "2024-01-01T00:00:00Z"))
    store.add(_container(B, "new", "2024-06-01T00:00:00Z"))
    assert [c.name for c in store.all()] == ["new", "old"]


def test_save_rewrites_the_record(store: StateStore) -> None:
    c = _container(A, "web")
    store.add(c)
    c.state.update(Status="running", Running=True, Pid=42)
    c.restart_count = 2
    store.save(c)
    again = store.get(A)
    assert again.state["Pid"] == 42 and again.restart_count == 2 and again.running


def test_a_late_save_does_not_bring_a_removed_container_back(store: StateStore,
                                                             backend: MemoryBackend) -> None:
    c = _container(A, "web")
    store.add(c)
    store.remove(A)
    store.save(c)
    assert _keys(backend) == []
    with pytest.raises(NoSuchContainer):
        store.get(A)


def test_remove_takes_the_record_its_name_and_its_execs(store: StateStore,
                                                        backend: MemoryBackend) -> None:
    store.add(_container(A, "web"))
    store.add(_container(B, "db"))
    store.add_exec("e1", A, {"Cmd": ["ls"]}, {"Running": False, "ExitCode": 0})
    store.add_exec("e2", B, {"Cmd": ["ps"]}, {"Running": True})
    assert store.get_exec("e1") == (A, {"Cmd": ["ls"]}, {"Running": False, "ExitCode": 0})
    rev = backend.revision()
    store.remove(A)
    assert backend.revision() == rev + 1  # one transaction
    assert _keys(backend) == [f"containers/{B}", "execs/e2", "names/db"]
    with pytest.raises(NotFound, match="No such exec instance: e1"):
        store.get_exec("e1")
    store.add(_container("c" * 64, "web"))  # the name is free again
    store.remove("d" * 64)  # an unknown id: nothing to do


def test_rename_moves_the_name_key(store: StateStore, backend: MemoryBackend) -> None:
    c = _container(A, "web")
    store.add(c)
    store.rename(c, "/web2")
    assert c.name == "web2"
    assert _keys(backend, "names/") == ["names/web2"]
    assert store.get("web2").id == A
    with pytest.raises(NoSuchContainer):
        store.get("web")
    store.add(_container(B, "web"))  # the old name is free


def test_rename_to_a_taken_name_changes_nothing(store: StateStore,
                                                backend: MemoryBackend) -> None:
    c = _container(A, "web")
    store.add(c)
    store.add(_container(B, "db"))
    rev = backend.revision()
    with pytest.raises(NameInUse, match='"/db"'):
        store.rename(c, "db")
    assert c.name == "web" and backend.revision() == rev
    assert store.get("web").id == A and store.get("db").id == B


def test_rename_of_a_removed_container(store: StateStore) -> None:
    c = _container(A, "web")
    store.add(c)
    store.remove(A)
    with pytest.raises(NoSuchContainer):
        store.rename(c, "other")


def test_save_with_a_changed_name_is_a_rename(store: StateStore,
                                              backend: MemoryBackend) -> None:
    c = _container(A, "web")
    store.add(c)
    c.name = "web2"
    store.save(c)
    assert _keys(backend, "names/") == ["names/web2"] and store.get("web2").id == A


def test_two_threads_creating_one_name_one_wins(backend: MemoryBackend) -> None:
    stores = [StateStore(backend) for _ in range(8)]
    barrier = threading.Barrier(len(stores))
    results: list[str] = []

    def create(i: int) -> None:
        barrier.wait()
        try:
            stores[i].add(_container(f"{i:064x}", "web"))
            results.append("won")
        except NameInUse:
            results.append("lost")

    threads = [threading.Thread(target=create, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["lost"] * 7 + ["won"]
    assert len(backend.range("containers/")[0]) == 1


def _create_in_process(path: str, i: int, barrier: threading.Barrier,
                       results: multiprocessing.Queue[str]) -> None:
    backend = SqliteBackend(Path(path))
    try:
        barrier.wait()
        StateStore(backend).add(_container(f"{i:064x}", "web"))
        results.put(f"won {i}")
    except NameInUse:
        results.put("lost")
    finally:
        backend.close()


def test_two_processes_creating_one_name_against_one_file_one_wins(tmp_path: Path) -> None:
    """Several daemons' worth of processes, one SQLite state file, one name: exactly one
    record is created, every other process gets NameInUse."""
    path = tmp_path / "state.db"
    SqliteBackend(path).close()  # the file exists before they race
    ctx = multiprocessing.get_context("fork")
    for _round in range(3):
        n = 6
        barrier = ctx.Barrier(n)
        results: multiprocessing.Queue[str] = ctx.Queue()
        procs = [ctx.Process(target=_create_in_process, args=(str(path), i, barrier, results))
                 for i in range(n)]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
        won = [o for o in outcomes if o.startswith("won")]
        assert len(won) == 1 and outcomes.count("lost") == n - 1
        backend = SqliteBackend(path)
        store = StateStore(backend)
        winner = f"{int(won[0].split()[1]):064x}"
        assert store.get("web").id == winner and len(store.all()) == 1
        store.remove(winner)
        backend.close()


# -- volumes --


def test_volumes_are_records(tmp_path: Path, backend: MemoryBackend) -> None:
    vols = VolumeStore(tmp_path / "volumes", backend)
    doc, new = vols.create("data", {"tier": "db"})
    assert new and doc["Name"] == "data" and doc["Labels"] == {"tier": "db"}
    assert doc["Mountpoint"] == str(tmp_path / "volumes" / "data" / "_data")
    assert (tmp_path / "volumes" / "data" / "_data").is_dir()
    again, new = vols.create("data", {"other": "x"})
    assert not new and again == doc  # the first one's
    anon, _ = vols.create()
    assert vols.is_anonymous(anon["Name"]) and not vols.is_anonymous("data")
    assert not vols.is_anonymous("nope")
    assert [v["Name"] for v in vols.list()] == sorted(["data", anon["Name"]])
    assert json.loads(backend.get("volumes/data").value)["labels"] == {"tier": "db"}
    with pytest.raises(VolumeInUse, match=r"in use - \[abc\]"):
        vols.remove("data", ["abc"])
    vols.remove("data", [])
    assert not (tmp_path / "volumes" / "data").exists()
    with pytest.raises(NoSuchVolume, match="get data: no such volume"):
        vols.get("data")
    with pytest.raises(InvalidArgument):
        vols.create("../x")


def test_the_history_of_saves_is_compacted(backend: MemoryBackend) -> None:
    """A health check saves its container at every probe: the store keeps the backend's
    history to its last `history` revisions, so it does not grow without end."""
    store = StateStore(backend, history=50, compact_every=10)
    c = _container(A, "web")
    store.add(c)
    with backend.watch("containers/", backend.revision() + 1) as w:
        for i in range(300):
            c.state["Pid"] = i
            store.save(c)
        assert backend.compacted_revision() >= backend.revision() - 60
        with pytest.raises(Compacted):
            w.get(timeout=1)
    kvs, rev = backend.range("containers/")
    with backend.watch("containers/", rev - 40) as w:  # a recent watcher resumes
        assert w.get(timeout=1) is not None
    assert store.get(A).state["Pid"] == 299
