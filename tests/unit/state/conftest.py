"""The implementations the conformance suite runs against, each with its capabilities.

A new backend (etcd) adds one `Impl` here; tests that need a capability it lacks skip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from portside.state import MemoryBackend, SqliteBackend, StateBackend


@dataclass
class Impl:
    """`open()` opens a backend on the implementation's storage (again: a second instance
    over the same data when `persistent`, the same instance otherwise)."""

    name: str
    make: Callable[[], StateBackend]
    persistent: bool  # data survives close and reopen
    shared: bool  # several instances (processes) may open the same data at once
    opened: list[StateBackend] = field(default_factory=list)
    _single: StateBackend | None = None

    def open(self) -> StateBackend:
        if not self.persistent:
            if self._single is None:
                self._single = self.make()
                self.opened.append(self._single)
            return self._single
        b = self.make()
        self.opened.append(b)
        return b

    def reopen(self, b: StateBackend) -> StateBackend:
        assert self.persistent
        b.close()
        return self.open()


IMPLS = ["memory", "sqlite"]


@pytest.fixture(params=IMPLS)
def impl(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Impl]:
    if request.param == "memory":
        it = Impl("memory", MemoryBackend, persistent=False, shared=False)
    else:
        path = tmp_path / "state.db"
        it = Impl("sqlite", lambda: SqliteBackend(path, poll_interval=0.02, reap_interval=0.1),
                  persistent=True, shared=True)
    yield it
    for b in it.opened:
        b.close()


@pytest.fixture
def backend(impl: Impl) -> StateBackend:
    return impl.open()
