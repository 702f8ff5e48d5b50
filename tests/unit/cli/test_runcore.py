"""`runcore` over any engine (`cli.engine.run_calls`): what it asks, in which order, and the
exit codes it gives; an in-memory engine stands in for the daemon."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from types import SimpleNamespace

import pytest

from portside.cli.engine import run_calls
from portside.cli.runcore import attach_and_start, create_container, start_container
from portside.cli.runspec import parse_run
from portside.engine.errors import StartFailed
from portside.engine.interface import Created, CreateOptions, WaitResult
from portside.errors import NotFound


class FakeContainers:
    """The part of `ContainersAPI` that `run` uses, recording each call."""

    def __init__(self, output: bytes = b"", wait: WaitResult | None = None,
                 start_error: Exception | None = None) -> None:
        self.calls: list[str] = []
        self.created: list[CreateOptions] = []
        self.output, self.start_error = output, start_error
        self.wait_result = wait or WaitResult(0)

    def create(self, options: CreateOptions) -> Created:
        self.calls.append("create")
        self.created.append(options)
        return Created(id="c1", warnings=["low on memory"])

    def start(self, ref: str) -> None:
        self.calls.append(f"start {ref}")
        if self.start_error is not None:
            raise self.start_error

    def attach(self, ref: str, stdin: bool = False, logs: bool = False,
               detach_keys: str = "") -> tuple[socket.socket, bytes]:
        self.calls.append(f"attach {ref} stdin={stdin}")
        ours, theirs = socket.socketpair()

        def send() -> None:
            theirs.sendall(self.output)
            theirs.close()

        threading.Thread(target=send, daemon=True).start()
        return ours, b""

    def begin_wait(self, ref: str, condition: str = "not-running"
                   ) -> Callable[[], WaitResult]:
        self.calls.append(f"wait {ref} {condition}")
        return lambda: self.wait_result

    def resize(self, ref: str, rows: int, cols: int) -> None:
        self.calls.append("resize")


def _engine(containers: FakeContainers) -> SimpleNamespace:
    return SimpleNamespace(containers=containers)


def test_create_sends_the_body_and_name_and_prints_warnings(
        capsys: pytest.CaptureFixture[str]) -> None:
    parsed = parse_run(["--name", "web", "-t", "busybox", "echo", "hi"])
    assert parsed is not None
    kw, image, command = parsed
    fake = FakeContainers()
    assert create_container(run_calls(_engine(fake)), image, tuple(command), kw) == "c1"
    (options,) = fake.created
    assert options.name == "web"
    assert options.body["Image"] == "busybox" and options.body["Cmd"] == ["echo", "hi"]
    assert options.body["Tty"] is True
    assert capsys.readouterr().err == "WARNING: low on memory\n"


def test_start_failures_keep_their_exit_code_others_are_125() -> None:
    failed = StartFailed("exec: \"nope\": executable file not found in $PATH")
    failed.exit_code = 127
    with pytest.raises(StartFailed) as info:
        start_container(run_calls(_engine(FakeContainers(start_error=failed))), "c1")
    assert info.value.exit_code == 127
    with pytest.raises(NotFound) as missing:
        start_container(run_calls(_engine(FakeContainers(start_error=NotFound("gone")))), "c1")
    assert missing.value.exit_code == 125


def test_attach_and_start_waits_before_starting_and_gives_the_status(
        capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    frames = b"\x01\x00\x00\x00\x00\x00\x00\x03out" + b"\x02\x00\x00\x00\x00\x00\x00\x03err"
    fake = FakeContainers(output=frames, wait=WaitResult(3, "oom"))
    code = attach_and_start(run_calls(_engine(fake)), "c1", tty=False, interactive=False,
                            auto_remove=True)
    assert code == 3
    # the wait is registered before the start, so even an instant exit is seen
    assert fake.calls == ["attach c1 stdin=False", "wait c1 removed", "start c1"]
    out, err = capfdbinary.readouterr()
    assert out == b"out" and err == b"errError: oom\n"
