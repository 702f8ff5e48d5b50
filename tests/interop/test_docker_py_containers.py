"""docker-py (PyPI) against portside's daemon: containers, as a docker-py user runs them.

`containers.run` attached and detached with its options, the lifecycle verbs of a
`Container`, logs, attach, top, stats, diff, commit, prune, and the exceptions docker-py
raises from Docker's status codes. Nothing is adapted: the daemon speaks Docker's API.
"""

from __future__ import annotations

import datetime
import math
import socket
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import docker
import pytest
from docker.errors import APIError, ContainerError, NotFound
from docker.models.containers import Container
from docker.types import Healthcheck, Mount

pytestmark = pytest.mark.interop


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def status_is(c: Container, status: str) -> Callable[[], bool]:
    def check() -> bool:
        c.reload()
        return bool(c.status == status)
    return check


def test_run_attached_returns_output(dockerpy: docker.DockerClient) -> None:
    both = ["sh", "-c", "echo out; echo err >&2"]
    assert dockerpy.containers.run("busybox", both, remove=True) == b"out\n"
    assert dockerpy.containers.run("busybox", both, stdout=False, stderr=True,
                                   remove=True) == b"err\n"
    out = dockerpy.containers.run("busybox", ["-c", "echo $MODE $(pwd) $(id -u)"],
                                  entrypoint="sh", environment={"MODE": "prod"},
                                  working_dir="/tmp", user="nobody", name="cfg",
                                  labels={"tier": "front"})
    assert out == b"prod /tmp 65534\n"
    c = dockerpy.containers.get("cfg")
    assert c.name == "cfg" and c.status == "exited"
    assert c.labels["tier"] == "front"  # beside the image's labels, as in Docker
    assert c.attrs["Config"]["Entrypoint"] == ["sh"]
    assert c.attrs["Config"]["User"] == "nobody"
    assert c.attrs["State"]["ExitCode"] == 0
    assert "busybox:latest" in c.image.tags
    c.remove()
    # a tty: one raw stream, the terminal's line endings
    assert dockerpy.containers.run("busybox", "tty", tty=True, remove=True) == b"/dev/pts/0\r\n"
    assert dockerpy.containers.list(all=True) == []


def test_run_nonzero_exit_raises_container_error(dockerpy: docker.DockerClient) -> None:
    with pytest.raises(ContainerError) as err:
        dockerpy.containers.run("busybox", ["sh", "-c", "echo bad >&2; exit 3"], name="bad")
    assert err.value.exit_status == 3
    assert err.value.stderr == b"bad\n"
    assert err.value.container.name == "bad"
    dockerpy.containers.get("bad").remove()
    with pytest.raises(ContainerError) as err:
        dockerpy.containers.run("busybox", "false", remove=True)
    assert err.value.exit_status == 1
    with pytest.raises(APIError) as api_err:
        dockerpy.containers.run("busybox", "nosuchcommand", remove=True)
    assert api_err.value.status_code == 400  # Docker 20.10: start fails, exec not found
    assert "executable file not found" in str(api_err.value.explanation)
    assert dockerpy.containers.list(all=True, filters={"name": "bad"}) == []


def test_run_detached_with_ports_volumes_and_limits(dockerpy: docker.DockerClient,
                                                    tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("from the host\n")
    c = dockerpy.containers.run(
        "busybox", ["httpd", "-f", "-p", "80", "-h", "/www"], detach=True, name="web",
        ports={"80/tcp": ("127.0.0.1", None)}, mem_limit="64m",
        volumes={"webdata": {"bind": "/data", "mode": "rw"}},
        mounts=[Mount("/www", str(site), type="bind", read_only=True)],
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 3})
    assert isinstance(c, Container) and len(c.id) == 64
    c.reload()
    assert c.status == "running"
    (binding,) = c.ports["80/tcp"]
    assert binding["HostIp"] == "127.0.0.1"
    port = int(binding["HostPort"])

    def served() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                return bool(resp.read() == b"from the host\n")
        except OSError:
            return False

    wait_until(served, "the published port to answer")
    assert c.attrs["HostConfig"]["Memory"] == 64 * 1024 * 1024
    assert c.attrs["HostConfig"]["RestartPolicy"] == {"Name": "on-failure",
                                                      "MaximumRetryCount": 3}
    mounts = {m["Destination"]: m for m in c.attrs["Mounts"]}
    assert mounts["/data"]["Type"] == "volume" and mounts["/data"]["Name"] == "webdata"
    assert mounts["/data"]["RW"] is True
    assert mounts["/www"]["Type"] == "bind" and mounts["/www"]["Source"] == str(site)
    assert mounts["/www"]["RW"] is False
    assert dockerpy.volumes.get("webdata").name == "webdata"
    r = c.exec_run("sh -c 'echo x > /www/y'")
    assert r.exit_code != 0 and b"Read-only file system" in r.output
    stats = c.stats(stream=False)
    assert stats["memory_stats"]["limit"] == 64 * 1024 * 1024
    assert stats["memory_stats"]["usage"] > 0
    assert stats["pids_stats"]["current"] >= 1
    assert "cpu_usage" in stats["cpu_stats"] and stats["name"] == "/web"
    c.remove(force=True, v=True)
    with pytest.raises(NotFound):
        c.reload()


def test_restart_policy_and_healthcheck(dockerpy: docker.DockerClient) -> None:
    flaky = dockerpy.containers.run("busybox", ["sh", "-c", "exit 2"], detach=True,
                                    restart_policy={"Name": "on-failure",
                                                    "MaximumRetryCount": 2})

    def retried() -> bool:
        flaky.reload()
        return bool(flaky.attrs["RestartCount"] == 2 and flaky.status == "exited")

    wait_until(retried, "two restarts, then exited")
    assert flaky.attrs["State"]["ExitCode"] == 2
    flaky.remove()
    ms = 1_000_000
    c = dockerpy.containers.run(
        "busybox", ["sleep", "300"], detach=True,
        healthcheck=Healthcheck(test=["CMD-SHELL", "test -e /tmp/ok"], interval=100 * ms,
                                timeout=2000 * ms, retries=2, start_period=0))
    c.reload()
    assert c.attrs["Config"]["Healthcheck"]["Test"] == ["CMD-SHELL", "test -e /tmp/ok"]

    def health() -> str:
        c.reload()
        return str(c.attrs["State"]["Health"]["Status"])

    wait_until(lambda: health() == "unhealthy", "unhealthy")
    c.exec_run("touch /tmp/ok")
    wait_until(lambda: health() == "healthy", "healthy")
    log = c.attrs["State"]["Health"]["Log"]
    assert log[-1]["ExitCode"] == 0
    c.remove(force=True)


def test_auto_remove_and_remove_with_detach(dockerpy: docker.DockerClient) -> None:
    c = dockerpy.containers.run("busybox", "true", detach=True, auto_remove=True)
    assert c.wait()["StatusCode"] == 0

    def gone() -> bool:
        try:
            c.reload()
        except NotFound:
            return True
        return False

    wait_until(gone, "the auto-removed container to go")
    c = dockerpy.containers.run("busybox", "true", detach=True, remove=True)
    c.reload()
    assert c.attrs["HostConfig"]["AutoRemove"] is True
    c.wait(condition="removed")
    wait_until(gone, "the removed container to go")
    with pytest.raises(APIError) as err:  # Docker's 400, at create
        dockerpy.containers.run("busybox", "true", detach=True, remove=True,
                                restart_policy={"Name": "always"})
    assert err.value.status_code == 400
    assert "can't create 'AutoRemove' container with restart policy" in str(
        err.value.explanation)
    assert dockerpy.containers.list(all=True) == []


def test_create_get_list_with_filters(dockerpy: docker.DockerClient) -> None:
    a = dockerpy.containers.create("busybox", "sleep 300", name="app-a", labels={"app": "x"})
    b = dockerpy.containers.create("busybox", "true", name="app-b", labels={"app": "y"})
    assert a.status == "created"
    hc = b.attrs["HostConfig"]  # every field, zero when not asked for, as from Docker
    assert hc["Privileged"] is False and hc["ReadonlyRootfs"] is False
    assert hc["Memory"] == 0 and hc["NanoCpus"] == 0 and hc["PidsLimit"] is None
    assert hc["AutoRemove"] is False and hc["Binds"] is None and hc["PortBindings"] == {}
    assert hc["LogConfig"] == {"Type": "json-file", "Config": {}}
    assert hc["ShmSize"] == 64 * 1024 * 1024 and hc["Runtime"] in ("crun", "runc")
    assert dockerpy.containers.list() == []
    assert {c.name for c in dockerpy.containers.list(all=True)} == {"app-a", "app-b"}
    a.start()
    b.start()
    assert b.wait() == {"StatusCode": 0, "Error": None}
    assert [c.name for c in dockerpy.containers.list()] == ["app-a"]
    assert [c.id for c in dockerpy.containers.list(filters={"label": "app=x"})] == [a.id]
    assert [c.name for c in dockerpy.containers.list(
        all=True, filters={"status": "exited"})] == ["app-b"]
    assert [c.name for c in dockerpy.containers.list(
        all=True, filters={"name": "app-b"})] == ["app-b"]
    assert {c.name for c in dockerpy.containers.list(  # a regex on the name with its /
        all=True, filters={"name": "^/app-[ab]$"})} == {"app-a", "app-b"}
    assert dockerpy.containers.list(all=True, filters={"name": "^app"}) == []
    assert [c.name for c in dockerpy.containers.list(
        all=True, filters={"label": ["app"], "id": a.id[:12]})] == ["app-a"]
    assert len(dockerpy.containers.list(all=True, limit=1)) == 1
    assert dockerpy.containers.get(a.id[:10]).id == a.id
    assert dockerpy.containers.get(a.short_id).name == "app-a"
    summary = dockerpy.containers.list(all=True, sparse=True, filters={"name": "app-a"})[0]
    assert summary.attrs["Names"] == ["/app-a"] and summary.attrs["State"] == "running"
    a.remove(force=True)
    b.remove()


def test_list_filters_network_volume_ports_order(dockerpy: docker.DockerClient,
                                                 tmp_path: Path) -> None:
    net = dockerpy.networks.create("flt-net")
    dockerpy.containers.create("busybox", "true", name="first", ports={"80/tcp": None},
                               volumes={"flt-vol": {"bind": "/v", "mode": "rw"}})
    dockerpy.containers.create("busybox", "true", name="second", network="flt-net",
                               mounts=[Mount("/m", str(tmp_path), type="bind")])
    dockerpy.containers.create("busybox", "true", name="third")

    def names(**filters: str) -> list[str]:
        return sorted(c.name for c in dockerpy.containers.list(all=True, filters=filters))

    assert names(volume="flt-vol") == ["first"] and names(volume="/v") == ["first"]
    assert names(volume=str(tmp_path)) == ["second"]
    assert names(network="flt-net") == ["second"] and names(network=net.id) == ["second"]
    assert names(network="bridge") == ["first", "third"]
    assert names(expose="80") == ["first"] and names(expose="80/udp") == []
    assert names(publish="80/tcp") == ["first"] and names(publish="79-81") == ["first"]
    assert names(since="first") == ["second", "third"]
    assert names(before="third") == ["first", "second"]
    assert sorted(c.name for c in dockerpy.containers.list(filters={"since": "first"})) == [
        "second", "third"]  # before and since list stopped ones too, as in Docker
    with pytest.raises(APIError) as err:
        dockerpy.containers.list(filters={"colour": "red"})
    assert err.value.status_code == 400 and "invalid filter 'colour'" in str(
        err.value.explanation)
    for c in dockerpy.containers.list(all=True):
        c.remove(v=True)
    net.remove()


def test_lifecycle_verbs(dockerpy: docker.DockerClient) -> None:
    # PID 1 has no default action for SIGTERM: the shell traps it
    c = dockerpy.containers.run("busybox", ["sh", "-c", "trap 'exit 7' TERM; echo ready;"
                                            " while true; do sleep 0.1; done"],
                                detach=True, name="life")
    c.pause()
    c.reload()
    assert c.status == "paused" and c.attrs["State"]["Paused"] is True
    with pytest.raises(APIError) as err:
        c.pause()
    assert err.value.status_code == 409
    c.unpause()
    c.reload()
    assert c.status == "running"
    started = c.attrs["State"]["StartedAt"]
    c.restart(timeout=0)
    c.reload()
    assert c.status == "running" and c.attrs["State"]["StartedAt"] != started
    c.stop(timeout=0)
    c.reload()
    assert c.status == "exited" and c.attrs["State"]["ExitCode"] == 137
    assert c.wait()["StatusCode"] == 137
    before = c.logs().count(b"ready")
    c.start()  # SIGTERM once its trap is set
    wait_until(lambda: c.logs().count(b"ready") > before, "the trap to be set")
    c.kill(signal="SIGTERM")
    assert c.wait(timeout=30)["StatusCode"] == 7
    with pytest.raises(APIError) as err:
        c.kill()
    assert err.value.status_code == 409
    c.start()
    with pytest.raises(APIError) as err:
        c.remove()
    assert err.value.status_code == 409 and "running" in str(err.value.explanation)
    c.kill()
    c.reload()
    assert c.status == "exited" and c.attrs["State"]["ExitCode"] == 137
    c.remove()
    with pytest.raises(NotFound):
        dockerpy.containers.get("life")
    with pytest.raises(NotFound):
        c.start()


def test_names_in_use_and_unknown_things(dockerpy: docker.DockerClient) -> None:
    dockerpy.containers.create("busybox", "true", name="dup")
    with pytest.raises(APIError) as err:
        dockerpy.containers.create("busybox", "true", name="dup")
    assert err.value.status_code == 409 and "already in use" in str(err.value.explanation)
    assert not isinstance(err.value, NotFound)
    for call in (lambda: dockerpy.containers.get("nope"),
                 lambda: dockerpy.api.stop("nope"),
                 lambda: dockerpy.api.remove_container("nope"),
                 lambda: dockerpy.api.logs("nope")):
        with pytest.raises(NotFound) as nf:
            call()
        assert "No such container: nope" in str(nf.value.explanation)
    with pytest.raises(docker.errors.ImageNotFound):
        dockerpy.containers.create("nosuchimage:1", "true")
    with pytest.raises(APIError) as err:
        dockerpy.containers.create("busybox", "true", mem_limit="1m")
    assert err.value.status_code == 400
    assert "Minimum memory limit allowed is 6MB" in str(err.value.explanation)


def test_logs_stream_follow_timestamps_since(dockerpy: docker.DockerClient) -> None:
    c = dockerpy.containers.run(
        "busybox", ["sh", "-c", "echo one; echo two >&2; sleep 1.5; echo three"], detach=True)
    chunks = list(c.logs(stream=True, follow=True))
    assert b"".join(chunks) == b"one\ntwo\nthree\n"
    assert c.logs(stderr=False) == b"one\nthree\n"
    assert c.logs(stdout=False) == b"two\n"
    assert c.logs(tail=1) == b"three\n"
    stamped = c.logs(timestamps=True).decode().splitlines()
    assert [line.split(" ", 1)[1] for line in stamped] == ["one", "two", "three"]
    times = [datetime.datetime.fromisoformat(line.split(" ", 1)[0][:26]) for line in stamped]
    assert times[2] - times[1] >= datetime.timedelta(seconds=1.4)
    # docker-py sends a datetime as whole seconds, a float as it is
    second = math.ceil(times[1].replace(tzinfo=datetime.UTC).timestamp())
    cut = datetime.datetime.fromtimestamp(second, datetime.UTC)
    assert c.logs(since=cut) == b"three\n"
    assert c.logs(until=cut) == b"one\ntwo\n"
    assert c.logs(since=times[2].replace(tzinfo=datetime.UTC).timestamp() - 0.2) == b"three\n"
    c.remove()


def test_attach_and_stdin(dockerpy: docker.DockerClient) -> None:
    c = dockerpy.containers.create("busybox", ["sh", "-c", "echo out; echo err >&2"])
    stream = c.attach(stdout=True, stderr=True, stream=True)  # before start: nothing lost
    c.start()
    assert b"".join(stream) in (b"out\nerr\n", b"err\nout\n")
    assert c.wait()["StatusCode"] == 0  # the stream ends with its output, the exit follows
    assert c.attach(logs=True, stream=False, stderr=False) == b"out\n"
    c.remove()
    c = dockerpy.containers.run("busybox", "cat", detach=True, stdin_open=True)
    c.reload()
    assert c.attrs["Config"]["OpenStdin"] is True
    sock = c.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
    raw: socket.socket = sock._sock
    raw.sendall(b"through stdin\n")
    wait_until(lambda: c.logs() == b"through stdin\n", "the echoed line")
    sock.close()  # without StdinOnce the container's stdin stays open, as in Docker
    c.reload()
    assert c.status == "running"
    c.kill()  # SIGKILL returns once it has stopped, as in Docker: it can go at once
    c.remove()


def test_top_diff_commit_image(dockerpy: docker.DockerClient) -> None:
    c = dockerpy.containers.run("busybox", ["sh", "-c", "mkdir /made && echo hi > /made/f &&"
                                            " rm /etc/motd 2>/dev/null; exec sleep 300"],
                                detach=True)
    wait_until(lambda: any("sleep" in " ".join(p) for p in c.top()["Processes"]),
               "sleep in top")
    top = c.top()
    assert "PID" in top["Titles"] and "CMD" in top["Titles"]
    diff = {d["Path"]: d["Kind"] for d in c.diff()}
    assert diff["/made"] == 1 and diff["/made/f"] == 1  # added
    image = c.commit(repository="snap", tag="1", message="snapshot", author="me",
                     changes=["ENV SNAP=yes", "LABEL kind=snapshot"])
    assert "snap:1" in image.tags
    assert "SNAP=yes" in image.attrs["Config"]["Env"]
    assert image.labels["kind"] == "snapshot"
    with pytest.raises(APIError) as err:
        c.commit(repository="snap", tag="2", changes=["NOPE x"])
    assert err.value.status_code == 400
    c.reload()
    assert c.status == "running"  # paused while committing, running again
    out = dockerpy.containers.run("snap:1", ["sh", "-c", "cat /made/f; echo $SNAP"],
                                  remove=True)
    assert out == b"hi\nyes\n"
    assert c.image.id == dockerpy.images.get("busybox").id
    c.remove(force=True)
    with pytest.raises(APIError) as err:
        c.top()
    assert err.value.status_code == 404


def test_prune(dockerpy: docker.DockerClient) -> None:
    keep = dockerpy.containers.run("busybox", "sleep 300", detach=True)
    done = dockerpy.containers.run("busybox", "true", detach=True, labels={"job": "1"})
    other = dockerpy.containers.run("busybox", "true", detach=True)
    assert done.wait()["StatusCode"] == 0 and other.wait()["StatusCode"] == 0
    assert dockerpy.containers.prune(filters={"label": "job"}) == {
        "ContainersDeleted": [done.id], "SpaceReclaimed": 0}
    result = dockerpy.containers.prune()
    assert result["ContainersDeleted"] == [other.id]
    assert [c.id for c in dockerpy.containers.list(all=True)] == [keep.id]
    assert dockerpy.containers.prune()["ContainersDeleted"] is None
    keep.remove(force=True)
