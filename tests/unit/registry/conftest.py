"""Fixtures: registry servers running in threads of the test process (regserver.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.regserver import RunningRegistry, run_registry

from portside.registry import server as srv


@pytest.fixture
def make_registry(tmp_path: Path) -> Iterator[Callable[..., RunningRegistry]]:
    stops: list[Callable[[], None]] = []

    def make(name: str = "reg", **kwargs: Any) -> RunningRegistry:
        ssl_context = kwargs.pop("ssl_context", None)
        registry = srv.open_registry(tmp_path / name, **kwargs)
        running, stop = run_registry(registry, ssl_context)
        stops.append(stop)
        return running

    yield make
    for stop in reversed(stops):
        stop()


@pytest.fixture
def reg(make_registry: Callable[..., RunningRegistry]) -> RunningRegistry:
    return make_registry()
