"""Builds an engine from the real parts under one root: the one place that chooses them."""

from __future__ import annotations

from pathlib import Path

from portside.engine import legacy
from portside.engine.containers import Engine
from portside.engine.events import EventBus
from portside.engine.imagepolicy import ImagePolicy
from portside.engine.monitor import ExitReporter
from portside.engine.networking import Networking
from portside.engine.state import StateStore
from portside.engine.volumes import VolumeStore
from portside.runtime import Runtime
from portside.state.sqlite import SqliteBackend
from portside.store.images import ImageStore

STATE_FILE = "state.db"


def build_engine(root: Path, default_runtime: str = "crun",
                 exits: ExitReporter | None = None, policy: ImagePolicy | None = None) -> Engine:
    """The engine of the root `root`: its image store, runtime (conmon + crun/runc),
    networking, and one state backend (`state.db`) shared by the container records, the
    volumes, the network records and the event bus (which closes it last); `exits`
    selects the managed mode; `policy` is asked before an image is pulled or a container
    created. Records of an older `engine.db` are moved in first."""
    root = Path(root)
    backend = SqliteBackend(root / STATE_FILE)
    legacy.migrate(root, backend)
    events = EventBus(backend)
    return Engine(
        root, images=ImageStore(root), state=StateStore(backend),
        volumes=VolumeStore(root / "volumes", backend),
        runtime=Runtime(root / "runtime"),
        networks=Networking(root, backend, lambda action, net, attrs: events.publish(
            "network", action, net.id, attrs)),
        events=events, default_runtime=default_runtime, exits=exits, policy=policy)
