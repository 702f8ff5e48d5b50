"""A daemon on a private root with busybox, for the `service` and `stack` commands."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
        d.cli("service", "rm", *d.cli("service", "ls", "-q", check=False).stdout.split(),
              check=False)
        d.cleanup()
