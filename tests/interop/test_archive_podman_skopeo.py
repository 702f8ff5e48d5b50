"""`portside save` archives load in podman and pass skopeo; podman's archives load here.

Podman gets its own storage under tmp_path (vfs driver, private root and runroot) and a
containers.conf for this machine's limits, so the machine's own podman state is never touched.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from helpers.imagefactory import add_image
from helpers.podman import Run, need

from portside.store.images import ImageStore

pytestmark = pytest.mark.interop

def skopeo(*args: str) -> Any:
    result = subprocess.run([need("skopeo"), *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"skopeo {' '.join(args)}: {result.stderr}"
    return json.loads(result.stdout)


def portside(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command, against the test's PORTSIDE_ROOT (set by the `root` fixture)."""
    result = subprocess.run(
        [sys.executable, "-m", "portside", *args], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"portside {' '.join(args)}: {result.stderr}"
    return result


def make_busybox(store: ImageStore) -> Any:
    return add_image(
        store,
        [
            {"bin/busybox": b"\x7fELF" + os.urandom(2000)},
            {"etc/passwd": b"root:x:0:0::/root:/bin/sh\n"},
        ],
        tags=("busybox:latest",),
        config={"Cmd": ["sh"], "Env": ["PATH=/bin"]},
    )


def podman_image(podman: Run, name: str) -> dict[str, Any]:
    images = json.loads(podman("image", "inspect", name).stdout)
    assert len(images) == 1
    return dict(images[0])


@pytest.mark.parametrize("fmt", ["oci", "docker"])
def test_portside_save_loads_in_podman(
    store: ImageStore, podman: Run, tmp_path: Path, fmt: str
) -> None:
    built = make_busybox(store)
    out = tmp_path / "bb.tar"
    portside("save", "-o", str(out), "--format", fmt, "busybox")
    result = podman("load", "-i", str(out))
    assert "Loaded image: docker.io/library/busybox:latest" in result.stdout + result.stderr
    listed = podman("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert listed == ["docker.io/library/busybox:latest"]
    info = podman_image(podman, "busybox:latest")
    assert f"sha256:{info['Id']}" == built.image.config_digest
    config = json.loads(built.config)
    assert info["RootFS"]["Layers"] == config["rootfs"]["diff_ids"]
    assert info["Config"]["Cmd"] == ["sh"]


@pytest.mark.parametrize("fmt", ["oci", "docker"])
def test_several_images_and_tags_load_in_podman(
    store: ImageStore, podman: Run, tmp_path: Path, fmt: str
) -> None:
    add_image(store, [{"a": b"1"}], tags=("busybox:latest", "busybox:1.36"))
    add_image(store, [{"b": b"2"}], tags=("example.com/team/app:2",), compression="zstd")
    out = tmp_path / "multi.tar"
    portside("save", "-o", str(out), "--format", fmt, "busybox", "example.com/team/app:2")
    podman("load", "-i", str(out))
    listed = podman("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert sorted(listed) == [
        "docker.io/library/busybox:1.36",
        "docker.io/library/busybox:latest",
        "example.com/team/app:2",
    ]


def test_skopeo_inspects_saved_archives(store: ImageStore, tmp_path: Path) -> None:
    built = make_busybox(store)
    oci, docker = tmp_path / "oci.tar", tmp_path / "docker.tar"
    portside("save", "-o", str(oci), "busybox")
    portside("save", "-o", str(docker), "--format", "docker", "busybox")
    inspected = skopeo("inspect", f"oci-archive:{oci}")
    assert inspected["Digest"] == built.image.manifest_digest
    manifest = json.loads(built.manifest)
    assert inspected["Layers"] == [layer["digest"] for layer in manifest["layers"]]
    raw = skopeo("inspect", "--raw", f"oci-archive:{oci}")
    assert raw["config"]["digest"] == built.image.config_digest
    inspected = skopeo("inspect", f"docker-archive:{docker}")
    assert inspected["Layers"] == json.loads(built.config)["rootfs"]["diff_ids"]
    config = skopeo("inspect", "--config", f"docker-archive:{docker}")
    assert config["rootfs"]["diff_ids"] == json.loads(built.config)["rootfs"]["diff_ids"]


def _import_into_podman(podman: Run, tmp_path: Path, name: str, content: bytes) -> dict[str, Any]:
    """An image in podman without a registry: `podman import` of a tar of files."""
    files = tmp_path / f"{name.replace('/', '_').replace(':', '_')}.tar"
    with tarfile.open(files, "w") as tar:
        info = tarfile.TarInfo("etc/motd")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    podman("import", "--change", "CMD=/bin/sh", str(files), name)
    return podman_image(podman, name)


def _archive_config(archive: Path, fmt: str) -> bytes:
    """The config blob a podman archive carries (podman may rewrite it when it exports)."""
    with tarfile.open(archive) as tar:
        if fmt == "docker-archive":
            entry = json.load(tar.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
            return tar.extractfile(entry["Config"]).read()  # type: ignore[union-attr]
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        blob = lambda d: tar.extractfile(f"blobs/sha256/{d[7:]}").read()  # type: ignore[union-attr]  # noqa: E731
        manifest = json.loads(blob(index["manifests"][0]["digest"]))
        return blob(manifest["config"]["digest"])  # type: ignore[no-any-return]


@pytest.mark.parametrize("fmt", ["oci-archive", "docker-archive"])
def test_podman_save_loads_here(store: ImageStore, podman: Run, tmp_path: Path, fmt: str) -> None:
    info = _import_into_podman(podman, tmp_path, "example.com/imported:1", b"hello from podman\n")
    out = tmp_path / "podman.tar"
    podman("save", "--format", fmt, "-o", str(out), "example.com/imported:1")
    result = portside("load", "-i", str(out))
    assert result.stdout == "Loaded image: example.com/imported:1\n"
    image = store.get("example.com/imported:1")
    config_bytes = _archive_config(out, fmt)
    assert image.config_digest == "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    if fmt == "docker-archive":  # podman keeps the config as is: the same image id
        assert image.config_digest == f"sha256:{info['Id']}"
    config = store.config(image)
    assert config.diff_ids == info["RootFS"]["Layers"]
    assert config.config["Cmd"] == info["Config"]["Cmd"]


def test_podman_multi_image_docker_archive_loads_here(
    store: ImageStore, podman: Run, tmp_path: Path
) -> None:
    first = _import_into_podman(podman, tmp_path, "example.com/one:1", b"one\n")
    second = _import_into_podman(podman, tmp_path, "example.com/two:2", b"two\n")
    out = tmp_path / "multi.tar"
    podman("save", "-m", "-o", str(out), "example.com/one:1", "example.com/two:2")
    result = portside("load", "-i", str(out))
    assert sorted(result.stdout.splitlines()) == [
        "Loaded image: example.com/one:1",
        "Loaded image: example.com/two:2",
    ]
    assert store.get("example.com/one:1").config_digest == f"sha256:{first['Id']}"
    assert store.get("example.com/two:2").config_digest == f"sha256:{second['Id']}"


def test_round_trip_through_podman(store: ImageStore, podman: Run, tmp_path: Path) -> None:
    """portside save -> podman load -> podman save -> portside load into a fresh root."""
    built = make_busybox(store)
    out = tmp_path / "bb.tar"
    portside("save", "-o", str(out), "busybox")
    podman("load", "-i", str(out))
    back = tmp_path / "back.tar"
    podman(
        "save", "--format", "docker-archive", "-o", str(back), "docker.io/library/busybox:latest"
    )
    fresh = ImageStore(tmp_path / "fresh")
    try:
        from portside.store import archive

        loaded = archive.load(fresh, back)
        assert loaded[0].config_digest == built.image.config_digest
        assert loaded[0].tags == ("docker.io/library/busybox:latest",)
    finally:
        fresh.db.close()
