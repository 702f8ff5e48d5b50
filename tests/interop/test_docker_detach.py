"""Detach keys with the real docker client on a terminal: ctrl-p ctrl-q (or --detach-keys)
ends `docker attach` and `docker exec -it`, and what runs keeps running, stdin open.

The docker client watches for the keys too (and then prints "read escape sequence" and
exits 1, as it does against dockerd); the daemon's own detection is what other clients
(docker-py's attach socket, compose) rely on, tested here through a raw API socket."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import shutil
import subprocess
import time

import pytest
from helpers.daemon import PortsideDaemon

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("docker") is None, reason="docker client not installed"),
]


class Terminal:
    """A docker command on a pseudo-terminal of its own, as a person types into it."""

    def __init__(self, daemon: PortsideDaemon, *args: str) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(daemon.docker_argv(*args), env=daemon.docker_env(),
                                     stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True)
        os.close(slave)
        self.seen = b""

    def expect(self, text: bytes, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{text!r} not seen; got {self.seen[-300:]!r}")
            if select.select([self.master], [], [], left)[0]:
                try:
                    self.seen += os.read(self.master, 4096)
                except OSError:  # the command ended and closed its terminal
                    time.sleep(0.05)

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def wait(self, timeout: float = 20) -> int:
        try:
            code = self.proc.wait(timeout)
            with contextlib.suppress(OSError):
                while select.select([self.master], [], [], 0.2)[0]:
                    self.seen += os.read(self.master, 4096)
            return code
        finally:
            os.close(self.master)


def test_ctrl_p_ctrl_q_detaches_attach_and_the_shell_keeps_running(daemon: PortsideDaemon):
    daemon.docker("run", "-dit", "--name", "pd-shell", "busybox", "sh")
    term = Terminal(daemon, "attach", "pd-shell")
    term.type(b"echo one-$((40+2))\r")
    term.expect(b"one-42")
    term.type(b"\x10\x11")
    term.wait()
    assert b"read escape sequence" in term.seen
    assert daemon.inspect("pd-shell")["State"]["Running"] is True
    # its stdin is still open: a second attach drives the same shell
    again = Terminal(daemon, "attach", "--detach-keys", "ctrl-x,x", "pd-shell")
    again.type(b"echo two-$((40+3))\r")
    again.expect(b"two-43")
    again.type(b"\x10\x11")  # not this attach's keys: passed on to the shell
    again.type(b"\x18x")
    again.wait()
    assert daemon.inspect("pd-shell")["State"]["Running"] is True
    daemon.docker("rm", "-f", "pd-shell")


def test_detach_from_exec_leaves_its_process_running(daemon: PortsideDaemon):
    daemon.docker("run", "-d", "--name", "pd-exec", "busybox", "sleep", "300")
    term = Terminal(daemon, "exec", "-it", "pd-exec", "sh")
    term.type(b"sleep 1234 &\r")
    term.type(b"echo started-$((1+1))\r")
    term.expect(b"started-2")
    term.type(b"\x10\x11")
    term.wait()
    top = daemon.docker("top", "pd-exec").stdout
    assert "sleep 1234" in top and " sh" in top  # the exec'd shell and its child live on
    daemon.docker("rm", "-f", "pd-exec")


def test_bad_detach_keys_are_refused(daemon: PortsideDaemon):
    daemon.docker("run", "-dit", "--name", "pd-bad", "busybox", "sh")
    term = Terminal(daemon, "attach", "--detach-keys", "ctrl-1", "pd-bad")
    term.expect(b"received 400")  # refused before the upgrade, as dockerd does
    assert term.wait() != 0
    import docker

    api = docker.APIClient(base_url=f"unix://{daemon.socket}")
    try:
        r = api._post(api._url("/containers/{0}/attach", "pd-bad"),
                      params={"stream": 1, "stdin": 1, "detachKeys": "ctrl-1"})
        assert r.status_code == 400
        assert r.json()["message"] == "Invalid detach keys (ctrl-1) provided"
        r = api._post_json(api._url("/containers/{0}/exec", "pd-bad"),
                           data={"Cmd": ["true"], "DetachKeys": "nope"})
        assert r.status_code == 400
    finally:
        api.remove_container("pd-bad", force=True)
        api.close()


def test_the_daemon_itself_ends_the_stream_at_the_detach_keys(daemon: PortsideDaemon):
    import docker

    daemon.docker("run", "-dit", "--name", "pd-raw", "busybox", "sh")
    api = docker.APIClient(base_url=f"unix://{daemon.socket}")
    try:
        sock = api.attach_socket("pd-raw", params={"stdin": 1, "stdout": 1, "stream": 1,
                                                   "detachKeys": "ctrl-x,x"})
        raw = sock._sock
        raw.sendall(b"echo raw-$((6*7))\r")
        seen, deadline = b"", time.monotonic() + 20
        while b"raw-42" not in seen and time.monotonic() < deadline:
            seen += raw.recv(4096)
        raw.sendall(b"\x18x")
        raw.settimeout(20)
        while raw.recv(4096):  # the daemon closes the stream: recv gives b""
            pass
        sock.close()
        assert api.inspect_container("pd-raw")["State"]["Running"] is True
    finally:
        api.remove_container("pd-raw", force=True)
        api.close()
