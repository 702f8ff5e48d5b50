"""Builds an engine from the real parts under one root: the one place that chooses them."""

from __future__ import annotations

from pathlib import Path

from portside.engine.containers import Engine
from portside.engine.events import EventBus
from portside.engine.monitor import ExitReporter
from portside.engine.networking import Networking
from portside.engine.state import StateStore
from portside.engine.volumes import VolumeStore
from portside.runtime import Runtime
from portside.state.sqlite import SqliteBackend
from portside.store.images import ImageStore


def build_engine(root: Path, default_runtime: str = "crun",
                 exits: ExitReporter | None = None) -> Engine:
    """The engine of the root `root`: its image store, records, volumes, runtime (conmon +
    crun/runc), networking and event bus (its events kept in the state backend, `state.db`);
    `exits` selects the managed mode."""
    root = Path(root)
    state = StateStore(root / "engine.db")
    events = EventBus(SqliteBackend(root / "state.db"))
    return Engine(
        root, images=ImageStore(root), state=state,
        volumes=VolumeStore(root / "volumes", state.db, state.lock),
        runtime=Runtime(root / "runtime"),
        networks=Networking(root, lambda action, net, attrs: events.publish(
            "network", action, net.id, attrs)),
        events=events, default_runtime=default_runtime, exits=exits)
