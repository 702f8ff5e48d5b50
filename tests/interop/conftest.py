"""Fixtures of the interop tests: a docker-py client on the test's own daemon, and
Debian's distribution registry (`docker-registry`, the reference implementation)."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest
from helpers.daemon import PortsideDaemon
from helpers.podman import need
from helpers.processes import stop_process


@pytest.fixture
def dockerpy(daemon: PortsideDaemon) -> Iterator[docker.DockerClient]:
    """docker-py's `DockerClient` on the daemon's socket, with the API version negotiated
    as docker-py does by default (it asks `/version`)."""
    client = docker.DockerClient(base_url="unix://" + str(daemon.socket), timeout=120)
    try:
        yield client
    finally:
        client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def distribution(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Start Debian's distribution registry (not its systemd service) on a free port."""
    binary = need("docker-registry")
    procs: list[subprocess.Popen[str]] = []

    def start(htpasswd: Path | None = None) -> str:
        port = free_port()
        root = tmp_path / f"distribution{len(procs)}"
        config = {
            "version": 0.1,
            "log": {"level": "warn"},
            "storage": {"filesystem": {"rootdirectory": str(root)}, "delete": {"enabled": True}},
            "http": {"addr": f"127.0.0.1:{port}"},
        }
        if htpasswd is not None:
            config["auth"] = {"htpasswd": {"realm": "test", "path": str(htpasswd)}}
        path = tmp_path / f"distribution{len(procs)}.yml"
        path.write_text(json.dumps(config))
        proc = subprocess.Popen([binary, "serve", str(path)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        for _ in range(300):  # wait until it accepts connections
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return f"127.0.0.1:{port}"
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        raise AssertionError("docker-registry did not start")

    yield start
    for proc in procs:
        stop_process(proc)
