"""Fixtures shared by every test: each test gets its own PORTSIDE_ROOT."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers.busybox import busybox_image  # noqa: E402
from helpers.daemon import (
    PortsideDaemon,  # noqa: E402
    stop_autostarted,  # noqa: E402
)
from helpers.podman import Run, private_podman  # noqa: E402

from portside.store.images import ImageStore  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def private_defaults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test may touch the machine's own portside: the default root points at a private
    directory for the whole session, and no daemon socket is set, so every root a test
    names has its own daemon beside it (`<root>/portside.sock`, started on first use like a
    user's); a daemon auto-started there is stopped at the end."""
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="ps-test-", dir="/tmp"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PORTSIDE_ROOT", str(base / "root"))
        mp.delenv("PORTSIDE_SOCKET", raising=False)
        mp.delenv("DOCKER_HOST", raising=False)
        yield
    stop_autostarted(base)
    # and those of roots that module-scoped fixtures made (the per-test sweep misses them)
    stop_autostarted(tmp_path_factory.getbasetemp())
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(autouse=True)
def _autostarted_daemons_stop(tmp_path: Path) -> Iterator[None]:
    yield
    if any(tmp_path.glob("*/portside.sock")):
        stop_autostarted(tmp_path)


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private portside root; `PORTSIDE_ROOT` points at it for CLI calls in the test (and
    so the daemon socket beside it, `<root>/portside.sock`)."""
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
