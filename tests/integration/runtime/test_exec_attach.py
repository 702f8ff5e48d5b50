"""exec (pipes and PTY), attach through conmon's socket, terminal resize."""

from __future__ import annotations

import os
import select
import socket
import time

import pytest

from portside.runtime import CommandNotFound, InvalidState

from .conftest import Harness


def _read_pty(fd: int, timeout: float = 30) -> bytes:
    out = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        out += chunk
    return out


@pytest.fixture
def running(harness: Harness):  # type: ignore[no-untyped-def]
    spec = harness.spec("sleep", "1000", env=["FROM_IMAGE=1"])
    harness.rt.create(spec)
    harness.rt.start(spec.id)
    yield spec.id
    harness.rt.delete(spec.id, force=True)


def test_exec_with_pipes(harness: Harness, running: str) -> None:
    p = harness.rt.exec(running, ["sh", "-c", 'echo "$FROM_IMAGE $EXTRA"; pwd; id -u; exit 5'],
                        env=["EXTRA=x"], user="app", cwd="/tmp")
    assert p.stdout is not None
    out = p.stdout.read()
    assert p.wait(30) == 5
    assert out.decode().splitlines() == ["1 x", "/tmp", "1000"]
    p.close()


def test_exec_stdin(harness: Harness, running: str) -> None:
    p = harness.rt.exec(running, ["cat"], stdin=True)
    assert p.stdin is not None and p.stdout is not None
    p.stdin.write(b"through stdin\n")
    p.stdin.close()
    assert p.stdout.read() == b"through stdin\n"
    assert p.wait(30) == 0
    p.close()


def test_exec_sees_container_processes(harness: Harness, running: str) -> None:
    p = harness.rt.exec(running, ["ps", "-o", "pid,args"])
    assert p.stdout is not None
    rows = p.stdout.read().decode().splitlines()[1:]
    p.wait(30)
    assert rows[0].split(None, 1) == ["1", "sleep 1000"]


def test_exec_with_tty_and_resize(harness: Harness, running: str) -> None:
    p = harness.rt.exec(running, ["sh", "-c", "sleep 0.5; tty; stty size"], tty=True)
    assert p.pty is not None
    p.resize(33, 111)
    out = _read_pty(p.pty).decode().replace("\r", "")
    assert p.wait(30) == 0
    assert out.splitlines() == ["/dev/pts/0", "33 111"]
    p.close()


def test_exec_missing_command(harness: Harness, running: str) -> None:
    with pytest.raises(CommandNotFound, match="no-such-thing"):
        harness.rt.exec(running, ["no-such-thing"])
    with pytest.raises(CommandNotFound):
        harness.rt.exec(running, ["/bin/no-such-thing"], tty=True)


def test_exec_in_stopped_container_is_refused(harness: Harness) -> None:
    spec = harness.spec("true")
    harness.rt.create(spec)
    harness.rt.start(spec.id)
    harness.rt.wait(spec.id, 30)
    with pytest.raises(InvalidState):
        harness.rt.exec(spec.id, ["true"])
    harness.rt.delete(spec.id)


def _attach_read(sock: socket.socket, want: bytes, timeout: float = 30) -> bytes:
    """Read conmon attach packets (first byte: 2 stdout, 3 stderr) until `want` shows."""
    out = b""
    deadline = time.time() + timeout
    while want not in out and time.time() < deadline:
        ready, _, _ = select.select([sock], [], [], 1)
        if ready:
            pkt = sock.recv(8193)
            if not pkt:
                break
            if pkt[0] in (2, 3):
                out += pkt[1:]
    return out


def test_attach_tty_container_and_resize(harness: Harness) -> None:
    spec = harness.spec("sh", tty=True, open_stdin=True)
    rt = harness.rt
    rt.create(spec)
    rt.start(spec.id)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.connect(str(rt.attach_socket(spec.id)))
    try:
        rt.resize(spec.id, 42, 132)
        sock.sendall(b"stty size; echo marker-$((6*7))\n")
        out = _attach_read(sock, b"marker-42")
        assert b"42 132" in out
        assert b"marker-42" in out
        sock.sendall(b"exit 4\n")
        assert rt.wait(spec.id, 30) == 4
    finally:
        sock.close()
    log_out, _ = harness.output(spec.id)
    assert "marker-42" in log_out
    rt.delete(spec.id)


def test_attach_stdin_without_tty(harness: Harness) -> None:
    spec = harness.spec("sh", "-c", "read line; echo got $line; echo err >&2", open_stdin=True)
    rt = harness.rt
    rt.create(spec)
    rt.start(spec.id)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.connect(str(rt.attach_socket(spec.id)))
    try:
        sock.sendall(b"hello\n")
        out = _attach_read(sock, b"got hello")
        assert b"got hello" in out
        assert rt.wait(spec.id, 30) == 0
    finally:
        sock.close()
    assert harness.output(spec.id) == ("got hello\n", "err\n")
    rt.delete(spec.id)


def test_attach_stdin_once_closes_stdin_on_client_eof(harness: Harness) -> None:
    spec = harness.spec("sh", "-c", "cat; echo done", open_stdin=True, stdin_once=True)
    rt = harness.rt
    rt.create(spec)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.connect(str(rt.attach_socket(spec.id)))
    rt.start(spec.id)
    try:
        sock.sendall(b"piped\n")
        sock.shutdown(socket.SHUT_WR)
        out = _attach_read(sock, b"done")
        assert rt.wait(spec.id, 30) == 0
    finally:
        sock.close()
    assert b"piped\ndone" in out.replace(b"\r", b"")
    rt.delete(spec.id)
