"""compose push / pull through a real registry (portside's distribution server)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Project


@pytest.fixture
def registry(project: Project, tmp_path: Path) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "portside", "registry", "serve", "--addr",
                             f"127.0.0.1:{port}", "--root", str(tmp_path / "registry")],
                            env=project.daemon.env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(30)


def test_push_then_pull(project: Project, registry: str) -> None:
    image = f"{registry}/{project.name}/app:1"
    project.write(f"""
services:
  app:
    image: {image}
    build: ./app
    network_mode: none
    command: cat /hello
""")
    (project.folder / "app").mkdir()
    (project.folder / "app" / "Dockerfile").write_text(
        "FROM busybox\nCOPY hello /hello\n")
    (project.folder / "app" / "hello").write_text("from the registry\n")
    project.compose("build")
    project.compose("push", "-q")
    project.daemon.cli("rmi", image)
    assert image not in project.daemon.cli("images").stdout
    project.compose("pull", "-q")
    assert f"{registry}/{project.name}/app" in project.daemon.cli("images").stdout
    # up uses the pulled image as it is (no build: it is present)
    project.compose("up", "--no-build")
    assert project.compose("logs", "--no-log-prefix").stdout == "from the registry\n"
