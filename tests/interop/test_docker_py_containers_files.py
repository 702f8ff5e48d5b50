"""docker-py (PyPI) against portside's daemon: `get_archive`, `put_archive`, `export`,
`update`, `rename`, `df`, `info`, `version` and `prune`s behave as against Docker."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.daemon import PortsideDaemon

docker = pytest.importorskip("docker")

pytestmark = pytest.mark.interop


@pytest.fixture
def client(daemon: PortsideDaemon, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    c = docker.DockerClient(base_url="unix://" + str(daemon.socket), version="auto")
    yield c
    c.close()


def test_archive_export_update_rename(client: object, daemon: PortsideDaemon) -> None:
    c = client.containers.run("busybox", ["sleep", "300"], name="web", detach=True)  # type: ignore[attr-defined]
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("greeting.txt")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"hello\n"))
    assert c.put_archive("/tmp", data.getvalue()) is True
    bits, stat = c.get_archive("/tmp/greeting.txt")
    assert stat["name"] == "greeting.txt" and stat["size"] == 6
    with tarfile.open(fileobj=io.BytesIO(b"".join(bits))) as tar:
        member = tar.extractfile("greeting.txt")
        assert member is not None and member.read() == b"hello\n"
    with pytest.raises(docker.errors.NotFound, match="Could not find the file /nope"):
        c.get_archive("/nope")
    with tarfile.open(fileobj=io.BytesIO(b"".join(c.export()))) as tar:
        names = tar.getnames()
    assert "tmp/greeting.txt" in names and "bin/busybox" in names
    c.update(mem_limit="64m", restart_policy={"Name": "always"})
    c.reload()
    assert c.attrs["HostConfig"]["Memory"] == 64 << 20
    assert c.attrs["HostConfig"]["RestartPolicy"]["Name"] == "always"
    c.rename("web2")
    c.reload()
    assert c.name == "web2"
    with pytest.raises(docker.errors.APIError) as err:
        client.containers.run("busybox", ["true"], name="web2")  # type: ignore[attr-defined]
    assert err.value.status_code == 409


def test_system_calls(client: object) -> None:
    client.containers.run("busybox", ["true"], name="done")  # type: ignore[attr-defined]
    info = client.info()  # type: ignore[attr-defined]
    assert info["Containers"] == 1 and info["Images"] == 1
    assert client.version()["ApiVersion"] == "1.43"  # type: ignore[attr-defined]
    df = client.df()  # type: ignore[attr-defined]
    assert [c["Names"] for c in df["Containers"]] == [["/done"]]
    assert df["Images"][0]["Containers"] == 1
    pruned = client.containers.prune()  # type: ignore[attr-defined]
    assert len(pruned["ContainersDeleted"]) == 1
    assert client.info()["Containers"] == 0  # type: ignore[attr-defined]
