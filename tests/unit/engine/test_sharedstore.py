"""The engine's image store as a build thread sees it: the same store, under the same lock."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from helpers.busybox import busybox_image

from portside.engine.sharedstore import SharedImageStore
from portside.store.images import ImageStore


def test_the_same_store_every_call_under_the_engines_lock(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "root")
    try:
        image = busybox_image(store)
        lock = threading.RLock()
        shared = SharedImageStore(store, lock)
        assert shared.db is store.db and shared.content is store.content  # no second store
        assert shared.get("busybox").id == image.id

        held, release = threading.Event(), threading.Event()

        def engine_work() -> None:
            with lock:
                held.set()
                release.wait(5)

        worker = threading.Thread(target=engine_work)
        worker.start()
        held.wait(5)
        got: list[float] = []
        reader = threading.Thread(target=lambda: (shared.lease("build:x", image),
                                                  got.append(time.monotonic())))
        reader.start()
        time.sleep(0.3)
        assert got == []  # waits for the engine's lock
        released = time.monotonic()
        release.set()
        reader.join(5)
        worker.join(5)
        assert got and got[0] >= released
        assert store.holders(image) == ["build:x"]
        shared.release("build:x")
        assert store.holders(image) == []
        snapshots = shared.snapshots
        assert snapshots.root == store.snapshots.root and snapshots.db is store.db
    finally:
        store.db.close()
