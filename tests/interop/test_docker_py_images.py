"""docker-py (PyPI) against portside's daemon: its image calls behave as against Docker 20.10.

pull, push (with and without `auth_config`), get, list, tag, remove, history, prune,
`image.save()` and `images.load()`, with a portside registry over HTTP."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
from helpers.daemon import PortsideDaemon
from helpers.imagefactory import add_image
from helpers.regserver import LoggedRegistry, publish, serve_registry

from portside.store.images import ImageStore

docker = pytest.importorskip("docker")

pytestmark = pytest.mark.interop


@pytest.fixture
def client(daemon: PortsideDaemon, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))  # no stored logins
    c = docker.DockerClient(base_url="unix://" + str(daemon.socket), version="auto")
    yield c
    c.close()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[LoggedRegistry]:
    logged, stop = serve_registry(tmp_path / "registry")
    yield logged
    stop()


def test_pull_get_list_tag_history_remove(client: docker.DockerClient,
                                          registry: LoggedRegistry, tmp_path: Path) -> None:
    repo = f"{registry.host}/team/app"
    publish(tmp_path, f"{repo}:1")
    image = client.images.pull(repo, tag="1")
    assert f"{repo}:1" in image.tags
    assert image.id.startswith("sha256:") and image.labels == {"team": "blue"}
    assert image.attrs["RepoDigests"][0].startswith(f"{repo}@sha256:")
    assert client.images.get(f"{repo}:1").id == image.id

    with pytest.raises(docker.errors.NotFound) as missing:
        client.images.pull(repo, tag="nope")
    assert "manifest unknown" in str(missing.value)
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("nope:1")

    assert image.tag("renamed", "2") is True
    names = {t for i in client.images.list() for t in i.tags}
    assert {"busybox:latest", f"{repo}:1", "renamed:2"} <= names
    assert [i.id for i in client.images.list(name="renamed")] == [image.id]
    assert client.images.list(filters={"label": "team=blue"})[0].id == image.id

    rows = image.history()
    assert rows[0]["Id"] == image.id and rows[0]["Tags"]
    assert [r["CreatedBy"] for r in rows] == ["test layer 1", "test layer 0"]
    assert all(isinstance(r["Created"], int) and r["Size"] > 0 for r in rows)

    client.images.remove("renamed:2")  # the model call returns nothing; the API call says what
    assert "renamed:2" not in client.images.get(image.id).tags
    removed = client.api.remove_image(image.id)
    assert removed == [{"Untagged": f"{repo}:1"}, {"Deleted": image.id}]
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.remove(image.id)


def test_push_with_and_without_auth_config(client: docker.DockerClient, tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text(f"bob:{bcrypt.hashpw(b'builder', bcrypt.gensalt(4)).decode()}\n")
    locked, stop = serve_registry(tmp_path / "locked", htpasswd=users)
    try:
        repo = f"{locked.host}/bob/box"
        assert client.images.get("busybox").tag(repo, "1")
        denied = [json.loads(line) for line in
                  client.images.push(repo, tag="1").strip().splitlines()]
        assert "unauthorized" in denied[-1]["error"].lower()
        assert denied[-1]["errorDetail"]["message"] == denied[-1]["error"]
        out = client.images.push(repo, tag="1", stream=True, decode=True,
                                 auth_config={"username": "bob", "password": "builder"})
        lines = list(out)
        assert lines[0] == {"status": f"The push refers to repository [{repo}]"}
        aux = [m["aux"] for m in lines if "aux" in m]
        assert aux and aux[0]["Tag"] == "1" and aux[0]["Digest"].startswith("sha256:")
        assert not any("error" in m for m in lines)
        client.images.remove(f"{repo}:1")
        pulled = client.images.pull(repo, tag="1",
                                    auth_config={"username": "bob", "password": "builder"})
        assert f"{repo}:1" in pulled.tags
    finally:
        stop()


def test_save_load_and_prune(client: docker.DockerClient, store: ImageStore) -> None:
    busybox = client.images.get("busybox")
    data = b"".join(busybox.save(named=True))
    assert len(data) > 100_000
    client.images.remove(busybox.id, force=True)
    loaded = client.images.load(data)
    assert [i.id for i in loaded] == [busybox.id]
    assert "busybox:latest" in loaded[0].tags
    with pytest.raises(docker.errors.APIError) as bad:
        client.images.load(b"no archive here" * 64)
    assert bad.value.status_code == 400

    dangling = add_image(store, [{"junk": os.urandom(200_000)}], compression="")
    report = client.images.prune()
    assert {"Deleted": dangling.image.id} in report["ImagesDeleted"]
    assert report["SpaceReclaimed"] >= 200_000
    assert client.images.prune() == {"ImagesDeleted": None, "SpaceReclaimed": 0}
    everything = client.images.prune(filters={"dangling": False})
    assert {"Deleted": busybox.id} in everything["ImagesDeleted"]
    assert client.images.list() == []
