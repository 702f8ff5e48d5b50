"""docker-py (PyPI) against portside's daemon: exec, through `Container.exec_run` and the
low-level `APIClient.exec_create/exec_start/exec_inspect`."""

from __future__ import annotations

import time

import docker
import pytest
from docker.errors import APIError, NotFound

pytestmark = pytest.mark.interop


def test_exec_run(dockerpy: docker.DockerClient) -> None:
    c = dockerpy.containers.run("busybox", ["sleep", "300"], detach=True,
                                environment={"FROM_RUN": "1"})
    r = c.exec_run("echo hello")
    assert r.exit_code == 0 and r.output == b"hello\n"
    r = c.exec_run(["sh", "-c", "echo out; echo err >&2; exit 3"], demux=True)
    assert r.exit_code == 3 and r.output == (b"out\n", b"err\n")
    r = c.exec_run(["sh", "-c", "echo only-out"], demux=True)
    assert r.output == (b"only-out\n", None)
    r = c.exec_run(["sh", "-c", "echo $FROM_RUN $EXTRA $(pwd) $(id -un)"],
                   environment={"EXTRA": "two"}, workdir="/tmp", user="nobody")
    assert r.exit_code == 0 and r.output == b"1 two /tmp nobody\n"
    r = c.exec_run(["sh", "-c", "echo $EXTRA"], environment=["EXTRA=as-list"])
    assert r.output == b"as-list\n"
    r = c.exec_run("tty", tty=True)
    assert r.exit_code == 0 and r.output.startswith(b"/dev/pts/")
    r = c.exec_run("nosuchcommand")  # Docker: the runtime's error as output, exit 126
    assert r.exit_code == 126
    assert b'"nosuchcommand": executable file not found in $PATH' in r.output
    c.remove(force=True)


def test_exec_run_stream(dockerpy: docker.DockerClient) -> None:
    c = dockerpy.containers.run("busybox", ["sleep", "300"], detach=True)
    r = c.exec_run(["sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.2; done"], stream=True)
    assert r.exit_code is None  # not known while streaming, as with Docker
    chunks = list(r.output)
    assert len(chunks) >= 2  # the lines come as they are written
    assert b"".join(chunks) == b"1\n2\n3\n"
    r = c.exec_run(["sh", "-c", "echo o; echo e >&2"], stream=True, demux=True)
    parts = list(r.output)
    assert b"".join(o for o, _ in parts if o) == b"o\n"
    assert b"".join(e for _, e in parts if e) == b"e\n"
    c.remove(force=True)


def test_low_level_exec_create_start_inspect(dockerpy: docker.DockerClient) -> None:
    api = dockerpy.api
    c = dockerpy.containers.run("busybox", ["sleep", "300"], detach=True)
    e = api.exec_create(c.id, ["sh", "-c", "echo $X; exit 4"], environment={"X": "x"},
                        workdir="/", user="root")
    info = api.exec_inspect(e["Id"])
    assert info["ID"] == e["Id"] and info["ContainerID"] == c.id
    assert info["Running"] is False and info["ExitCode"] is None
    assert info["ProcessConfig"]["entrypoint"] == "sh"
    assert info["ProcessConfig"]["arguments"] == ["-c", "echo $X; exit 4"]
    assert api.exec_start(e["Id"]) == b"x\n"
    info = api.exec_inspect(e["Id"])
    assert info["Running"] is False and info["ExitCode"] == 4
    with pytest.raises(APIError) as err:  # an exec runs once
        api.exec_start(e["Id"])
    assert err.value.status_code == 409
    # detached: returns at once, the exit code comes later
    e = api.exec_create(c.id, ["sh", "-c", "sleep 0.3; exit 5"])
    assert api.inspect_container(c.id)["ExecIDs"] == [e["Id"]]  # the ones not exited
    api.exec_start(e["Id"], detach=True)
    deadline = time.monotonic() + 30
    while api.exec_inspect(e["Id"])["ExitCode"] is None:
        assert time.monotonic() < deadline, "the detached exec did not finish"
        time.sleep(0.1)
    assert api.exec_inspect(e["Id"])["ExitCode"] == 5
    assert api.inspect_container(c.id)["ExecIDs"] is None
    # a stream of the output, demultiplexed
    e = api.exec_create(c.id, ["sh", "-c", "echo a; echo b >&2"])
    out = list(api.exec_start(e["Id"], stream=True, demux=True))
    assert b"".join(o for o, _ in out if o) == b"a\n"
    assert b"".join(x for _, x in out if x) == b"b\n"
    with pytest.raises(NotFound):
        api.exec_inspect("0" * 64)
    c.stop(timeout=0)
    with pytest.raises(APIError) as err:  # not running: Docker's 409
        c.exec_run("true")
    assert err.value.status_code == 409 and "is not running" in str(err.value.explanation)
    c.remove()
    with pytest.raises(NotFound):
        api.exec_create(c.id, "true")
