"""Fixtures shared by every test: each test gets its own PORTSIDE_ROOT."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers.busybox import busybox_image  # noqa: E402
from helpers.daemon import PortsideDaemon  # noqa: E402
from helpers.podman import Run, private_podman  # noqa: E402

from portside.store.images import ImageStore  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def private_defaults() -> Iterator[None]:
    """No test may touch the machine's own portside: the default root and daemon socket
    point at a private directory for the whole session; a daemon a test auto-started
    there is stopped at the end."""
    import os
    import shutil
    import signal
    import subprocess
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="ps-test-", dir="/tmp"))
    socket = base / "d.sock"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PORTSIDE_ROOT", str(base / "root"))
        mp.setenv("PORTSIDE_SOCKET", str(socket))
        yield
    found = subprocess.run(["pgrep", "-f", f"portside daemon --socket {socket}"],
                           capture_output=True, text=True)
    for pid in found.stdout.split():
        os.kill(int(pid), signal.SIGTERM)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private portside root; `PORTSIDE_ROOT` points at it for CLI calls in the test."""
    path = tmp_path / "root"
    path.mkdir()
    monkeypatch.setenv("PORTSIDE_ROOT", str(path))
    return path


@pytest.fixture
def podman(tmp_path: Path) -> Iterator[Run]:
    """A real podman in a private store under the test's tmp_path (see helpers/podman.py)."""
    with private_podman(tmp_path / "podman") as run:
        yield run


@pytest.fixture
def daemon(root: Path, store: ImageStore) -> Iterator[PortsideDaemon]:
    """A portside daemon on the test's root and its own socket, with a busybox image;
    its containers, networks and the daemon itself are gone after the test."""
    busybox_image(store)
    d = PortsideDaemon(root)
    d.start()
    try:
        yield d
    finally:
        d.cleanup()


@pytest.fixture
def store(root: Path) -> Iterator[ImageStore]:
    s = ImageStore(root)
    yield s
    s.db.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `slow` (minutes: 500- and 1,000-cycle soak tests) run only when asked
    for, with `-m slow` or PORTSIDE_SLOW_TESTS=1; `make test` stays well under CI's limit."""
    import os

    if "slow" in (config.getoption("markexpr") or "") or os.environ.get("PORTSIDE_SLOW_TESTS"):
        return
    skip = pytest.mark.skip(reason="slow soak test: run with -m slow or PORTSIDE_SLOW_TESTS=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
