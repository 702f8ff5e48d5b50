"""Piped stdin reaches the container and its end closes the container's stdin (StdinOnce)."""

from __future__ import annotations

import shutil

import pytest
from helpers.daemon import PortsideDaemon


def test_piped_stdin_ends_with_eof(daemon: PortsideDaemon) -> None:
    r = daemon.cli("run", "--rm", "-i", "busybox", "cat", input="x\n", timeout=30)
    assert r.stdout == "x\n"
    r = daemon.cli("run", "--rm", "-i", "busybox", "wc", "-l", input="a\nb\nc\n", timeout=30)
    assert r.stdout.strip() == "3"
    assert daemon.cli("ps", "-aq").stdout == ""


def test_empty_stdin_is_an_immediate_eof(daemon: PortsideDaemon) -> None:
    r = daemon.cli("run", "--rm", "-i", "busybox", "cat", input="", timeout=30)
    assert r.returncode == 0 and r.stdout == ""


@pytest.mark.skipif(shutil.which("docker") is None, reason="docker client not installed")
def test_docker_client_run_i_with_piped_input(daemon: PortsideDaemon) -> None:
    r = daemon.docker("run", "-i", "--rm", "busybox", "cat", input="hello\nworld\n", timeout=30)
    assert r.stdout == "hello\nworld\n"
    r = daemon.docker("run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done $?",
                      input="", timeout=30)
    assert r.stdout == "done 0\n"
