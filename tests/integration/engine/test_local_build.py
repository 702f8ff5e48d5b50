"""`LocalEngine.images.build`: a Docker build context (a tar) built in the engine's process
by portside's builder on the engine's own store."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from helpers.busybox import busybox_image
from helpers.daemon import PortsideDaemon

from portside.engine.interface import BuildOptions
from portside.engine.local import LocalEngine
from portside.errors import InvalidArgument
from portside.store.images import ImageStore

pytestmark = pytest.mark.timeout(180)


def _context(files: dict[str, str]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def test_build_from_a_context_tar(root: Path, store: ImageStore) -> None:
    busybox_image(store)
    lines: list[str] = []
    try:
        with LocalEngine.open(root) as engine:
            context = _context({
                "build.Dockerfile": "FROM busybox\nCOPY hello.txt /hello.txt\nLABEL made=here\n",
                "hello.txt": "hi\n"})
            image_id = engine.images.build(context, BuildOptions(
                tags=["built:1"], dockerfile="build.Dockerfile"), lines.append)
            assert image_id.startswith("sha256:")
            doc = engine.images.inspect("built:1")
            assert doc["Id"] == image_id
            assert doc["Config"]["Labels"]["made"] == "here"  # type: ignore[index,call-overload]
            assert any("COPY hello.txt /hello.txt" in line for line in lines)
            assert "built:1" in next(i for i in engine.images.list() if i.id == image_id).tags

            with pytest.raises(InvalidArgument, match="not a tar archive"):
                engine.images.build(io.BytesIO(b"not a tar" * 100), BuildOptions(), lines.append)
            with pytest.raises(InvalidArgument, match="inside the build context"):
                engine.images.build(_context({"Dockerfile": "FROM busybox\n"}),
                                    BuildOptions(dockerfile="../Dockerfile"), lines.append)
            assert not list((root / "tmp").glob("context-*"))  # scratch contexts are gone
    finally:
        PortsideDaemon(root).cleanup()
