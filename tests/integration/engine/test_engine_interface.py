"""One conformance suite for the engine interface (`portside.engine.interface.EngineAPI`),
run against both implementations: `RemoteEngine` over a daemon's socket and `LocalEngine`
in the test's process, each on its own root with busybox. Every test asserts what a user
of the interface sees, the same from both (containerd's content testsuite is the model).
"""

from __future__ import annotations

import gzip
import io
import secrets
import socket
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.busybox import busybox_image
from helpers.daemon import PortsideDaemon

from portside.client.remote import RemoteEngine
from portside.client.transport import Client, demux
from portside.engine.interface import (
    BuildGit,
    BuildOptions,
    CommitOptions,
    CreateOptions,
    Document,
    EngineAPI,
    EventOptions,
    ExecOptions,
    JSONValue,
    LogOptions,
    NetworkCreate,
    PullOptions,
    PushOptions,
    Stream,
    VolumeCreate,
    doc_at,
)
from portside.engine.local import LocalEngine
from portside.engine.state import NoSuchContainer
from portside.engine.volumes import NoSuchVolume
from portside.errors import InvalidArgument, NotFound
from portside.network.errors import NetworkNotFound
from portside.store.images import ImageStore

pytestmark = pytest.mark.timeout(180)

LOOP = "trap 'exit 0' TERM; while true; do sleep 0.1; done"


def _clean(engine: EngineAPI) -> None:
    """Everything a test made: its containers (and their anonymous volumes)."""
    for c in engine.containers.list(all=True):
        engine.containers.remove(c.id, force=True, volumes=True)


@pytest.fixture(params=["remote", "local"])
def engine(request: pytest.FixtureRequest, root: Path) -> Iterator[EngineAPI]:
    if request.param == "remote":
        daemon: PortsideDaemon = request.getfixturevalue("daemon")
        remote = RemoteEngine(Client(daemon.socket, autostart=False))
        try:
            yield remote
        finally:
            _clean(remote)  # the daemon fixture then stops it and purges its networks
        return
    store: ImageStore = request.getfixturevalue("store")
    busybox_image(store)
    leftovers = PortsideDaemon(root)  # never started: only its cleanup
    try:
        with LocalEngine.open(root) as local:
            try:
                yield local
            finally:
                _clean(local)
    finally:
        leftovers.cleanup()  # runtime state and networks left, as after a daemon


def _name() -> str:
    return "t-" + secrets.token_hex(4)


def _create(engine: EngineAPI, *cmd: str, name: str = "", **body: JSONValue) -> str:
    doc: Document = {"Image": "busybox", "Cmd": list(cmd), **body}
    return str(engine.containers.create(CreateOptions(body=doc, name=name)).id)


def _read(stream: Stream, first: bytes, tty: bool = False) -> tuple[bytes, bytes]:
    out, err = io.BytesIO(), io.BytesIO()
    try:
        demux(stream, first, tty, out, err)
    finally:
        stream.close()
    return out.getvalue(), err.getvalue()


def test_container_lifecycle(engine: EngineAPI) -> None:
    name = _name()
    cid = _create(engine, "sh", "-c", "echo hello; echo oops >&2; exit 3", name=name)
    assert len(cid) == 64
    created = engine.containers.state(name)
    assert created.status == "created" and not created.running
    waiting = engine.containers.begin_wait(cid, "next-exit")
    engine.containers.start(name)
    assert waiting().status_code == 3
    assert engine.containers.wait(cid).status_code == 3

    chunks = list(engine.containers.logs(name, LogOptions()))
    assert b"".join(c.data for c in chunks if c.stream == 1) == b"hello\n"
    assert b"".join(c.data for c in chunks if c.stream == 2) == b"oops\n"
    only_err = list(engine.containers.logs(name, LogOptions(stdout=False)))
    assert [c.data for c in only_err] == [b"oops\n"]
    with pytest.raises(InvalidArgument, match="at least one stream"):
        engine.containers.logs(name, LogOptions(stdout=False, stderr=False))

    doc = engine.containers.inspect(name)
    assert doc["Id"] == cid and doc["Name"] == f"/{name}"
    assert doc["State"]["ExitCode"] == 3
    state = engine.containers.state(cid)
    assert (state.status, state.running, state.exit_code) == ("exited", False, 3)
    assert cid not in [c.id for c in engine.containers.list()]
    listed = {c.id: c for c in engine.containers.list(all=True)}
    assert listed[cid].name == name and listed[cid].state == "exited"
    assert listed[cid].status.startswith("Exited (3)")

    runner = _create(engine, "sh", "-c", LOOP)
    engine.containers.start(runner)
    assert engine.containers.state(runner).running
    running = engine.containers.list(filters={"id": [runner]})
    assert [c.id for c in running] == [runner] and running[0].state == "running"
    engine.containers.stop(runner, timeout=5)
    assert engine.containers.state(runner).status == "exited"

    engine.containers.remove(cid)
    engine.containers.remove(runner)
    with pytest.raises(NoSuchContainer):
        engine.containers.inspect(cid)
    assert engine.containers.list(all=True) == []


def test_unknown_container_is_a_typed_error(engine: EngineAPI) -> None:
    for call in (engine.containers.inspect, engine.containers.start,
                 lambda ref: engine.containers.remove(ref, force=True),
                 lambda ref: engine.containers.logs(ref, LogOptions())):
        with pytest.raises(NoSuchContainer) as caught:
            call("no-such-thing")
        assert caught.value.ref == "no-such-thing"
        assert "no-such-thing" in str(caught.value)


def test_unknown_network_and_volume_are_typed_errors(engine: EngineAPI) -> None:
    with pytest.raises(NetworkNotFound) as net:
        engine.networks.inspect("no-such-net")
    assert net.value.ref == "no-such-net"
    with pytest.raises(NoSuchVolume):
        engine.volumes.inspect("no-such-volume")


def test_exec_output_and_exit_code(engine: EngineAPI) -> None:
    cid = _create(engine, "sh", "-c", LOOP)
    engine.containers.start(cid)
    exec_id = engine.containers.exec_create(cid, ExecOptions(
        cmd=["sh", "-c", "echo out $X; echo err >&2; exit 5"], env=["X=1"]))
    stream, first = engine.containers.exec_start(exec_id)
    out, err = _read(stream, first)
    assert (out, err) == (b"out 1\n", b"err\n")
    state = engine.containers.exec_inspect(exec_id)
    assert (state.running, state.exit_code) == (False, 5)

    tty_id = engine.containers.exec_create(cid, ExecOptions(cmd=["tty"], tty=True))
    stream, first = engine.containers.exec_start(tty_id, tty=True)
    out, _ = _read(stream, first, tty=True)
    assert out.strip().startswith(b"/dev/pts/")
    assert engine.containers.exec_inspect(tty_id).exit_code == 0


def test_attach_output(engine: EngineAPI) -> None:
    cid = _create(engine, "sh", "-c", "sleep 0.3; echo to-out; echo to-err >&2")
    stream, first = engine.containers.attach(cid)
    waiting = engine.containers.begin_wait(cid, "next-exit")
    engine.containers.start(cid)
    out, err = _read(stream, first)
    assert (out, err) == (b"to-out\n", b"to-err\n")
    assert waiting().status_code == 0


def test_volumes(engine: EngineAPI) -> None:
    name = _name()
    doc = engine.volumes.create(VolumeCreate(name=name, labels={"k": "v"}))
    assert doc["Name"] == name and doc["Driver"] == "local"
    assert engine.volumes.inspect(name)["Labels"] == {"k": "v"}
    assert name in [v["Name"] for v in engine.volumes.list()]
    assert [v["Name"] for v in engine.volumes.list(filters={"name": [name]})] == [name]
    engine.volumes.remove(name)
    assert name not in [v["Name"] for v in engine.volumes.list()]


def test_network_create_connect_inspect_remove(engine: EngineAPI) -> None:
    net = _name()
    net_id = engine.networks.create(NetworkCreate(name=net, labels={"purpose": "test"}))
    try:
        doc = engine.networks.inspect(net)
        assert doc["Id"] == net_id and doc["Name"] == net and doc["Driver"] == "bridge"
        assert doc["Labels"] == {"purpose": "test"}
        assert net in [n["Name"] for n in engine.networks.list()]
        cid = _create(engine, "sh", "-c", LOOP)
        engine.containers.start(cid)
        engine.networks.connect(net, cid)
        attached = engine.networks.inspect(net)["Containers"]
        assert isinstance(attached, dict) and cid in attached
        nets = engine.containers.inspect(cid)["NetworkSettings"]["Networks"]
        assert net in nets
        engine.networks.disconnect(net, cid)
        assert not engine.networks.inspect(net)["Containers"]
        engine.containers.remove(cid, force=True)
    finally:
        engine.networks.remove(net)
    assert net not in [n["Name"] for n in engine.networks.list()]


def test_images(engine: EngineAPI) -> None:
    images = engine.images.list()
    busybox = next(i for i in images if "busybox:latest" in i.tags)
    assert busybox.id.startswith("sha256:") and busybox.size > 0
    engine.images.tag("busybox", "mine:1")
    assert engine.images.inspect("mine:1")["Id"] == busybox.id
    assert "mine:1" in next(i for i in engine.images.list() if i.id == busybox.id).tags
    assert [i.id for i in engine.images.list(filters={"reference": ["mine"]})] == [busybox.id]
    history = engine.images.history("mine:1")
    assert history and history[0].id == busybox.id
    removed = engine.images.remove("mine:1")
    assert [r.untagged for r in removed] == ["mine:1"] and not any(r.deleted for r in removed)
    assert all("mine:1" not in i.tags for i in engine.images.list())


def test_system(engine: EngineAPI) -> None:
    assert engine.system.ping()
    version = engine.system.version()
    assert version["ApiVersion"] == "1.43" and version["Os"] == "linux"
    cid = _create(engine, "true")
    info = engine.system.info()
    assert info["Containers"] == 1 and info["ContainersStopped"] == 1
    assert info["Images"] == 1 and info["Driver"] == "overlay2"
    engine.containers.remove(cid)


def test_events_of_a_container_life(engine: EngineAPI) -> None:
    since = f"{time.time() - 1:.3f}"
    cid = _create(engine, "true")
    engine.containers.start(cid)
    engine.containers.wait(cid)
    engine.containers.remove(cid)
    until = f"{time.time() + 0.5:.3f}"
    seen = list(engine.system.events(EventOptions(since=since, until=until,
                                                  filters={"container": [cid]})))
    assert [e.action for e in seen] == ["create", "start", "die", "destroy"]
    assert all(e.type == "container" and e.actor_id == cid for e in seen)
    assert seen[2].attributes["exitCode"] == "0"
    revisions = [e.revision for e in seen]
    assert revisions == sorted(revisions) and revisions[0] > 0


def _tar(files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def test_files_changes_and_commit(engine: EngineAPI) -> None:
    cid = _create(engine, "sh", "-c", "echo made > /made.txt")
    engine.containers.start(cid)
    engine.containers.wait(cid)
    engine.containers.put_archive(cid, "/tmp", _tar({"given.txt": b"given\n"}))
    stat = engine.containers.stat_path(cid, "/tmp/given.txt")
    assert (stat.name, stat.size) == ("given.txt", 6)
    out = io.BytesIO()
    got = engine.containers.get_archive(cid, "/made.txt", out)
    assert got.name == "made.txt"
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        member = tar.extractfile("made.txt")
        assert member is not None and member.read() == b"made\n"
    kinds = {c.path: c.kind for c in engine.containers.changes(cid)}
    assert kinds["/made.txt"] == 1 and kinds["/tmp/given.txt"] == 1
    exported = io.BytesIO()
    engine.containers.export(cid, exported)
    with tarfile.open(fileobj=io.BytesIO(exported.getvalue())) as tar:
        assert {"made.txt", "tmp/given.txt", "bin/busybox"} <= set(tar.getnames())
    image_id = engine.containers.commit(cid, CommitOptions(reference="committed:1",
                                                           comment="by the suite"))
    assert engine.images.inspect("committed:1")["Id"] == image_id
    assert engine.images.history("committed:1")[0].comment == "by the suite"
    engine.containers.remove(cid)
    assert [r.deleted for r in engine.images.remove("committed:1") if r.deleted] == [image_id]


def test_running_container_views_and_changes(engine: EngineAPI) -> None:
    cid = _create(engine, "sh", "-c", LOOP, name=_name())
    engine.containers.start(cid)
    table = engine.containers.top(cid)
    assert "PID" in table.titles and any("sleep" in " ".join(p) or "sh" in " ".join(p)
                                         for p in table.processes)
    stats = engine.containers.stats(cid)
    assert stats["id"] == cid and "memory_stats" in stats
    engine.containers.pause(cid)
    assert engine.containers.state(cid).paused
    engine.containers.unpause(cid)
    assert engine.containers.state(cid).status == "running"
    new_name = _name()
    engine.containers.rename(cid, new_name)
    assert engine.containers.inspect(new_name)["Id"] == cid
    engine.containers.update(cid, {"Memory": 64 * 1024 * 1024})
    memory = engine.containers.inspect(cid)["HostConfig"]["Memory"]
    assert memory == 64 * 1024 * 1024
    engine.containers.kill(cid, "SIGKILL")
    assert engine.containers.wait(cid).status_code == 137
    report = engine.containers.prune()
    assert report.deleted == [cid]


def test_image_archive_and_prunes(engine: EngineAPI) -> None:
    saved = io.BytesIO()
    engine.images.save(["busybox"], saved)
    engine.images.tag("busybox", "copy:1")
    engine.images.remove("copy:1")
    saved.seek(0)
    assert engine.images.load(saved) == ["busybox:latest"]
    volume = engine.volumes.create(VolumeCreate())  # anonymous: what prune takes
    assert engine.volumes.prune().deleted == [volume["Name"]]
    net = _name()
    engine.networks.create(NetworkCreate(name=net))
    assert net in engine.networks.prune().deleted
    df = engine.system.df()
    assert [i["Id"] for i in df["Images"]] == [engine.images.inspect("busybox")["Id"]]


def test_build_from_a_context_tar(engine: EngineAPI) -> None:
    lines: list[str] = []
    context = _tar({"build.Dockerfile": b"FROM busybox\nCOPY hello.txt /hello.txt\nLABEL made=here\n",
                    "hello.txt": b"hi\n"})
    image_id = engine.images.build(context, BuildOptions(tags=["built:1"],
                                                         dockerfile="build.Dockerfile"),
                                   lines.append)
    assert image_id.startswith("sha256:")
    doc = engine.images.inspect("built:1")
    assert doc["Id"] == image_id
    assert doc["Config"]["Labels"]["made"] == "here"
    assert any("COPY hello.txt /hello.txt" in line for line in lines)
    assert "built:1" in next(i for i in engine.images.list() if i.id == image_id).tags
    with pytest.raises(InvalidArgument):
        engine.images.build(io.BytesIO(b"not a tar" * 100), BuildOptions(), lines.append)
    assert engine.system.prune_build_cache().deleted


class _Steps:
    """A BuildProgress that records what it is told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def plan(self, steps: int) -> None:
        self.calls.append(("plan", str(steps)))

    def step(self, label: str, text: str, status: str, seconds: float, *, ident: str = "",
             written: str = "") -> None:
        self.calls.append(("step", label, text, status))

    def running(self, label: str, text: str) -> None:
        self.calls.append(("running", label, text))

    def note(self, text: str) -> None:
        self.calls.append(("note", text))

    def output(self, text: str) -> None:
        self.calls.append(("output", text))


def test_build_with_portsides_extensions(engine: EngineAPI) -> None:
    """Secrets in the request, portside's step progress, the client's git facts and a
    reproducible time: the same from both engines."""
    value = secrets.token_hex(12)
    context = _tar({"Dockerfile": b"FROM busybox\n"
                    b"RUN --mount=type=secret,id=tok,env=TOK test \"$TOK\" = \"$(cat /run/secrets/tok)\""
                    b" && echo seen\n"})
    steps, lines = _Steps(), list[str]()
    image_id = engine.images.build(context, BuildOptions(
        tags=["ext:1"], secrets={"tok": value.encode()}, reproducible=True, epoch=86400,
        git=BuildGit("0123abcd" * 5, "https://example.com/app.git", dirty=True),
    ), lines.append, steps=steps)
    assert lines == []  # the steps went to `steps`, not to the classic log
    kinds = [c[0] for c in steps.calls]
    assert kinds[0] == "plan" and ("output", "seen") in steps.calls
    assert [c[3] for c in steps.calls if c[0] == "step"] == ["RESOLVED", "DONE"]
    doc = engine.images.inspect("ext:1")
    assert doc["Id"] == image_id and doc["Created"] == "1970-01-02T00:00:00Z"
    labels = doc_at(doc, "Config", "Labels")
    assert labels["org.opencontainers.image.revision"] == "0123abcd" * 5
    assert labels["org.opencontainers.image.source"] == "https://example.com/app.git"
    assert labels["io.portside.image.revision.dirty"] == "true"
    saved = io.BytesIO()
    engine.images.save(["ext:1"], saved)
    saved.seek(0)
    with tarfile.open(fileobj=saved) as tar:  # every blob, layers unzipped
        for member in tar:
            f = tar.extractfile(member) if member.isreg() else None
            data = f.read() if f else b""
            data = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
            assert value.encode() not in data, member.name
    assert all(value not in h.created_by for h in engine.images.history("ext:1"))


def test_local_engine_open_runs_and_closes_its_loop(root: Path, store: ImageStore) -> None:
    """`LocalEngine.open`: the engine's loop runs in its own thread while open, and nothing
    of it is left after (a container it started keeps running, as after a daemon stops)."""
    import threading

    busybox_image(store)
    try:
        with LocalEngine.open(root) as local:
            assert local.loop.is_running() and local.system.ping()
            assert any(t.name == "portside-engine" for t in threading.enumerate())
            cid = _create(local, "sh", "-c", LOOP)
            local.containers.start(cid)
        assert local.loop.is_closed()
        assert not any(t.name == "portside-engine" for t in threading.enumerate())
        with LocalEngine.open(root) as again:  # the next engine adopts it
            assert again.containers.state(cid).running
            again.containers.remove(cid, force=True)
    finally:
        PortsideDaemon(root).cleanup()


class _Recorded:
    """A `Progress` that remembers what it was told."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.finished: list[tuple[str, str]] = []
        self.closed = False

    def start(self, key: str, total: int) -> None:
        self.started.append(key)

    def advance(self, key: str, amount: int) -> None:
        pass

    def done(self, key: str, status: str) -> None:
        self.finished.append((key, status))

    def close(self) -> None:
        self.closed = True


def test_push_and_pull_through_a_registry(engine: EngineAPI, tmp_path: Path) -> None:
    from helpers.regserver import run_registry

    from portside.registry import server as srv

    registry, stop = run_registry(srv.open_registry(tmp_path / "registry"))
    try:
        ref = f"{registry.host}/suite/busybox:1"
        engine.images.tag("busybox", ref)
        pushed = _Recorded()
        report = engine.images.push(PushOptions(reference=ref, insecure=True), pushed)
        assert report.digest.startswith("sha256:") and report.size > 0 and pushed.closed
        assert pushed.finished and all(status for _, status in pushed.finished)
        engine.images.remove(ref)
        pulled = _Recorded()
        got = engine.images.pull(PullOptions(reference=ref, insecure=True), pulled)
        assert got.image_id == engine.images.inspect("busybox")["Id"]
        assert got.digest == report.digest and pulled.closed
        assert ref in next(i for i in engine.images.list() if i.id == got.image_id).tags
        with pytest.raises(NotFound):
            engine.images.pull(PullOptions(reference=f"{registry.host}/suite/none:1",
                                           insecure=True), _Recorded())
    finally:
        stop()


def test_stdin_through_attach_and_exec(engine: EngineAPI) -> None:
    cid = _create(engine, "sh", "-c", "read line; echo got $line", OpenStdin=True,
                  StdinOnce=True, AttachStdin=True)
    stream, first = engine.containers.attach(cid, stdin=True)
    waiting = engine.containers.begin_wait(cid, "next-exit")
    engine.containers.start(cid)
    stream.sendall(b"hello\n")
    out, _ = _read(stream, first)
    assert out == b"got hello\n"
    assert waiting().status_code == 0

    runner = _create(engine, "sh", "-c", LOOP)
    engine.containers.start(runner)
    exec_id = engine.containers.exec_create(runner, ExecOptions(cmd=["wc", "-c"], stdin=True))
    stream, first = engine.containers.exec_start(exec_id)
    stream.sendall(b"twelve bytes")
    stream.shutdown(socket.SHUT_WR)  # the exec's stdin ends: wc counts and exits
    out, _ = _read(stream, first)
    assert out.strip() == b"12"
    assert engine.containers.exec_inspect(exec_id).exit_code == 0
