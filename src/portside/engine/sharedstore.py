"""The engine's image store as a build thread uses it: one store, one lock.

The daemon has one ImageStore (one SQLite connection) and one image lock; a build runs in a
thread of its own for minutes. `SharedImageStore` is that same store, not a second one,
with every metadata call taken under the engine's lock: statements of two threads never
interleave in one transaction, and the lock is held per call, not for the whole build, so
RUN steps and `docker run` go on side by side.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from portside.oci.model import Descriptor
from portside.store.images import Image, ImageStore, RemovalReport
from portside.store.snapshots import SnapshotStore


class SharedImageStore(ImageStore):
    """The engine's image store as a build uses it from its own thread.

    Same SQLite connection, content store and snapshots as the engine's (no second store is
    opened); every call that touches the metadata takes the engine's image lock, the lock
    the daemon's other image work takes, so statements of two threads never interleave in
    one transaction, and the lock is held per call, not for the build: RUN steps and
    `docker run` go on side by side.
    """

    def __init__(self, store: ImageStore, lock: threading.RLock) -> None:
        # Deliberately not ImageStore.__init__: it would open a second connection.
        self._store = store
        self._guard = lock
        self.root = store.root
        self.content = store.content
        self.db = store.db
        self._shared_snapshots: SharedSnapshots | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)  # anything else the engine's store has

    @property
    def snapshots(self) -> SnapshotStore:
        if self._shared_snapshots is None:
            with self._guard:
                self._shared_snapshots = SharedSnapshots(self._store.snapshots, self._guard)
        return self._shared_snapshots

    def add_image(
        self,
        manifest_bytes: bytes,
        tags: Iterable[str] = (),
        index_digest: str | None = None,
        media_type: str | None = None,
    ) -> Image:
        with self._guard:
            return super().add_image(manifest_bytes, tags, index_digest, media_type)

    def get_by_manifest(self, manifest_digest: str) -> Image:
        with self._guard:
            return super().get_by_manifest(manifest_digest)

    def list(self) -> list[Image]:
        with self._guard:
            return super().list()

    def get(self, name: str) -> Image:
        with self._guard:
            return super().get(name)

    def tag(self, source: str, target: str) -> Image:
        with self._guard:
            return super().tag(source, target)

    def lease(self, holder: str, image: Image) -> None:
        with self._guard:
            super().lease(holder, image)

    def release(self, holder: str) -> None:
        with self._guard:
            super().release(holder)

    def lease_content(self, holder: str, digest: str) -> None:
        with self._guard:
            super().lease_content(holder, digest)

    def release_content(self, holder: str) -> None:
        with self._guard:
            super().release_content(holder)

    def holders(self, image: Image) -> builtins.list[str]:
        with self._guard:
            return super().holders(image)

    def remove(self, name: str, force: bool = False) -> RemovalReport:
        with self._guard:
            return super().remove(name, force)

    def prune(self, all_unused: bool = False) -> RemovalReport:
        with self._guard:
            return super().prune(all_unused)

    def collect_garbage(self, wait: bool = True) -> int:
        with self._guard:
            return super().collect_garbage(wait)


class SharedSnapshots(SnapshotStore):
    """The engine's snapshot store, each call under the engine's image lock."""

    def __init__(self, snapshots: SnapshotStore, lock: threading.RLock) -> None:
        # Not SnapshotStore.__init__: the same directories and connection, nothing new.
        self._inner = snapshots
        self._guard = lock
        self.root = snapshots.root
        self.db = snapshots.db
        self.content = snapshots.content
        self.policy = snapshots.policy
        self.sync = snapshots.sync

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def prepare(self, layer: Descriptor, diff_id: str) -> Path:
        with self._guard:
            return super().prepare(layer, diff_id)

    def ids(self) -> list[str]:
        with self._guard:
            return super().ids()

    def total_size(self) -> int:
        with self._guard:
            return super().total_size()

    def remove(self, diff_id: str) -> int:
        with self._guard:
            return super().remove(diff_id)
