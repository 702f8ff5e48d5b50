"""Clients that go away early (a `logs -f`, `events` or `stats` stopped with ctrl-c, an
upload cut off in the middle) are normal: the daemon logs no traceback for them and
carries on serving."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time

import pytest
from helpers.daemon import PortsideDaemon

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("docker") is None, reason="docker client not installed"),
]


def _interrupted(daemon: PortsideDaemon, *args: str) -> None:
    """`docker *args` stopped as a person stops it: SIGINT after it has streamed a while."""
    proc = subprocess.Popen(daemon.docker_argv(*args), env=daemon.docker_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    proc.stdout.readline()  # it is streaming
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:  # `docker stats` does not stop at SIGINT
        proc.kill()
        proc.wait(20)


def test_streams_and_uploads_cut_short_leave_no_traceback(daemon: PortsideDaemon):
    daemon.docker("run", "-d", "--name", "cg-talker", "busybox", "sh", "-c",
                  "while true; do echo tick; sleep 0.05; done")
    _interrupted(daemon, "logs", "-f", "cg-talker")
    _interrupted(daemon, "stats", "--format", "{{.Name}}", "cg-talker")
    events = subprocess.Popen(daemon.docker_argv("events"), env=daemon.docker_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert events.stdout is not None
    daemon.docker("pause", "cg-talker")
    events.stdout.readline()
    events.send_signal(signal.SIGINT)
    events.wait(20)
    daemon.docker("unpause", "cg-talker")
    with socket.socket(socket.AF_UNIX) as s:  # an image upload that stops half-way
        s.connect(str(daemon.socket))
        s.sendall(b"POST /images/load HTTP/1.1\r\nHost: d\r\nContent-Length: 10000000\r\n"
                  b"Content-Type: application/x-tar\r\n\r\n" + b"\0" * 65536)
    time.sleep(1)
    assert daemon.docker("inspect", "-f", "{{.State.Running}}", "cg-talker").stdout == "true\n"
    daemon.docker("rm", "-f", "cg-talker")
    log = daemon.log()
    assert "Traceback" not in log, log[-3000:]
