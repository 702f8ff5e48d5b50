"""Fixtures of the compose tests: a daemon on a private root and socket with busybox,
and a `project` helper that writes compose files and runs `portside compose` on them."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.busybox import busybox_image
from helpers.daemon import PortsideDaemon

from portside.store.images import ImageStore


@pytest.fixture
def daemon(root: Path, store: ImageStore) -> Iterator[PortsideDaemon]:
    busybox_image(store)
    d = PortsideDaemon(root)
    d.start()
    try:
        yield d
    finally:
        d.cleanup()
        _unmount_under(root)


def _unmount_under(root: Path) -> None:
    """Secrets tmpfs mounts a failed test may have left (compose down removes them)."""
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        points = [line.split()[4] for line in f]
    for point in sorted((p for p in points if p.startswith(str(root) + "/")), reverse=True):
        subprocess.run(["umount", point], check=False, capture_output=True)


class Project:
    """A folder with a compose file and a unique project name."""

    def __init__(self, daemon: PortsideDaemon, folder: Path) -> None:
        self.daemon, self.folder = daemon, folder
        self.name = f"ct{uuid.uuid4().hex[:8]}"
        folder.mkdir(parents=True, exist_ok=True)

    def write(self, text: str, name: str = "compose.yaml") -> None:
        (self.folder / name).write_text(text)

    def compose(self, *args: str, check: bool = True, timeout: float = 180,
                input: str | None = None, project: str | None = None
                ) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "portside", "compose", "-p", project or self.name, *args]
        r = subprocess.run(cmd, cwd=self.folder, env=self.daemon.env, text=True,
                           capture_output=True, timeout=timeout, input=input,
                           stdin=None if input is not None else subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise AssertionError(f"compose {' '.join(args)} -> {r.returncode}\n"
                                 f"stdout: {r.stdout}\nstderr: {r.stderr}\n"
                                 + self.daemon.log()[-2000:])
        return r

    def ps(self, *args: str) -> list[dict[str, Any]]:
        out = self.compose("ps", "--format", "json", *args).stdout
        return [json.loads(line) for line in out.splitlines()]

    def ids(self) -> dict[str, str]:
        return {r["Name"]: r["ID"] for r in self.ps("-a")}


@pytest.fixture
def project(daemon: PortsideDaemon, tmp_path: Path) -> Iterator[Project]:
    p = Project(daemon, tmp_path / "app")
    yield p
    if (p.folder / "compose.yaml").exists():
        p.compose("down", "-v", "-t", "0", "--remove-orphans", check=False)
