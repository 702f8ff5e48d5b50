"""A container whose root is an image from the store: layers unpacked into snapshots by
`prepare_image`, whiteouts of upper layers honoured by the overlay."""

from __future__ import annotations

import io
import tarfile

from helpers.imagefactory import add_image

from portside.store.images import ImageStore
from portside.store.rootfs import prepare_image

from .conftest import BUSYBOX, Harness


def _tar(entries: list[tuple[str, bytes | None, int, str]]) -> bytes:
    """(name, content or None for a symlink, mode, link target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mode, target in entries:
            info = tarfile.TarInfo(name)
            info.mode = mode
            if data is None:
                info.type = tarfile.SYMTYPE
                info.linkname = target
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_run_an_image_from_the_store(harness: Harness, store: ImageStore) -> None:
    with open(BUSYBOX, "rb") as f:
        busybox = f.read()
    base = _tar([("bin/busybox", busybox, 0o755, ""), ("bin/sh", None, 0o777, "busybox"),
                 ("bin/cat", None, 0o777, "busybox"), ("bin/ls", None, 0o777, "busybox"),
                 ("etc/old", b"old\n", 0o644, ""), ("etc/msg", b"v1\n", 0o644, "")])
    top = _tar([("etc/.wh.old", b"", 0o644, ""), ("etc/msg", b"v2\n", 0o644, "")])
    built = add_image(store, [base, top], tags=("t:1",))
    lowerdirs = prepare_image(store, built.image)
    assert len(lowerdirs) == 2
    spec = harness.spec("sh", "-c", "cat /etc/msg; ls /etc")
    spec.lowerdirs = lowerdirs
    harness.rt.create(spec)
    harness.rt.start(spec.id)
    assert harness.rt.wait(spec.id, 30) == 0
    assert harness.output(spec.id)[0].split() == ["v2", "msg"]
    harness.rt.delete(spec.id)
