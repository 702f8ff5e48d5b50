"""docker-py (from PyPI) building through portside's daemon: `images.build` and the low-level
`api.build` stream, as against dockerd's classic builder."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest
from helpers.daemon import PortsideDaemon

docker = pytest.importorskip("docker")

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        os.geteuid() != 0 or not all(shutil.which(t) for t in ("crun", "conmon")),
        reason="RUN needs root, crun and conmon",
    ),
]

DOCKERFILE = """\
FROM busybox AS base
ARG GREETING=hello
RUN echo "$GREETING from base" > /greeting

FROM base AS app
ARG GREETING
RUN echo "building with $GREETING"
CMD ["cat", "/greeting"]

FROM busybox AS unused
RUN exit 1
"""


def client_for(daemon: PortsideDaemon) -> docker.DockerClient:
    return docker.DockerClient(base_url="unix://" + str(daemon.socket), version="1.43")


def test_images_build_returns_the_image_and_its_log(daemon: PortsideDaemon,
                                                    tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    client = client_for(daemon)
    try:
        image, logs = client.images.build(path=str(tmp_path), tag="pyapp:1",
                                          buildargs={"GREETING": "howdy"}, target="app",
                                          labels={"built.by": "docker-py"})
        text = "".join(chunk.get("stream", "") for chunk in logs)
        assert "building with howdy\n" in text
        assert f"Successfully built {image.short_id.removeprefix('sha256:')}\n" in text
        assert "pyapp:1" in image.tags
        assert image.labels["built.by"] == "docker-py"
        assert image.id == client.images.get("pyapp:1").id
        assert daemon.docker("run", "--rm", "pyapp:1").stdout == "howdy from base\n"
    finally:
        client.close()


def test_api_build_streams_a_custom_context(daemon: PortsideDaemon) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in {"Dockerfile": b"FROM busybox\nCOPY hello.txt /\nRUN cat /hello.txt\n",
                           "hello.txt": b"hello from a custom context\n"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    client = client_for(daemon)
    try:
        chunks = list(client.api.build(fileobj=buf, custom_context=True, encoding="gzip",
                                       tag="custom:1", decode=True, rm=True))
        streamed = [c["stream"] for c in chunks if "stream" in c]
        assert streamed[0] == "Step 1/3 : FROM busybox\n"
        assert "hello from a custom context\n" in streamed
        ids = [c["aux"]["ID"] for c in chunks if "aux" in c]
        assert ids == [client.images.get("custom:1").id]
        assert streamed[-1] == "Successfully tagged custom:1\n"

        quiet = list(client.api.build(fileobj=io.BytesIO(buf.getvalue()), custom_context=True,
                                      encoding="gzip", quiet=True, decode=True))
        assert [c for c in quiet if "stream" in c] == [{"stream": ids[0] + "\n"}]
    finally:
        client.close()


def test_build_errors_raise_build_error(daemon: PortsideDaemon, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN echo going down && exit 7\n")
    client = client_for(daemon)
    try:
        with pytest.raises(docker.errors.BuildError) as failed:
            client.images.build(path=str(tmp_path), tag="broken:1")
        assert "exit code 7" in failed.value.msg
        assert "going down" in failed.value.msg
        log = list(failed.value.build_log)
        assert log[-1]["errorDetail"]["code"] == 7
        assert any(chunk.get("stream") == "going down\n" for chunk in log)
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get("broken:1")

        (tmp_path / "Dockerfile").write_text("FROM busybox\nCOPY missing.txt /\n")
        with pytest.raises(docker.errors.BuildError) as missing:
            client.images.build(path=str(tmp_path))
        assert "missing.txt" in missing.value.msg

        (tmp_path / "Dockerfile").write_text("FROM busybox\nNOPE x\n")
        with pytest.raises(docker.errors.APIError) as syntax:  # a 400 before any output
            client.images.build(path=str(tmp_path))
        assert syntax.value.status_code == 400
        assert "Dockerfile:2" in str(syntax.value.explanation)
    finally:
        client.close()


def test_prune_builds(daemon: PortsideDaemon, tmp_path: Path) -> None:
    # The build fails after the RUN that wrote the blob: its layer is kept by the cache only.
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox\nRUN head -c 100000 /dev/urandom > /blob\nRUN exit 1\n")
    client = client_for(daemon)
    try:
        with pytest.raises(docker.errors.BuildError):
            client.images.build(path=str(tmp_path), tag="cached:1")
        report = client.api.prune_builds()
        assert len(report["CachesDeleted"]) >= 1
        assert all(isinstance(c, str) for c in report["CachesDeleted"])
        assert report["SpaceReclaimed"] > 100000  # the RUN layer, kept only by the cache
        again = client.api.prune_builds()
        assert again == {"CachesDeleted": None, "SpaceReclaimed": 0}
    finally:
        client.close()
