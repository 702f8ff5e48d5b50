"""The image endpoints of the daemon, end to end with the real docker client (28.x) and a
portside registry over HTTP: pull, push, tag, rmi, save | load, history, prune, import,
events, the bad inputs, and two pulls of one image at once."""

from __future__ import annotations

import base64
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from helpers.daemon import PortsideDaemon
from helpers.imagefactory import add_image, tar_bytes
from helpers.regserver import LoggedRegistry, publish, serve_registry

from portside.store.images import ImageStore

pytestmark = pytest.mark.skipif(shutil.which("docker") is None, reason="docker client not installed")


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[LoggedRegistry]:
    logged, stop = serve_registry(tmp_path / "registry")
    yield logged
    stop()


def messages(out: str) -> list[str]:
    return [line.strip() for line in out.splitlines() if line.strip()]


def test_push_twice_then_pull_back(daemon: PortsideDaemon, registry: LoggedRegistry) -> None:
    ref = f"{registry.host}/team/box:1"
    daemon.docker("tag", "busybox", ref)
    first = daemon.docker("push", ref)
    assert f"The push refers to repository [{registry.host}/team/box]" in first.stdout
    assert "Pushed" in first.stdout and "1: digest: sha256:" in first.stdout
    assert registry.uploads(), "the first push sent the layer"

    registry.requests.clear()
    second = daemon.docker("push", ref)
    assert "Layer already exists" in second.stdout
    assert registry.uploads() == [], registry.requests  # not one blob byte sent again

    # Delete everything locally; the pull fetches every blob back.
    daemon.docker("rmi", ref)
    daemon.docker("rmi", "busybox")
    assert daemon.docker("images", "-q").stdout == ""
    registry.requests.clear()
    pulled = daemon.docker("pull", ref)
    lines = messages(pulled.stdout)
    assert lines[0] == "1: Pulling from team/box", lines
    assert any(line.endswith("Pull complete") for line in lines), lines
    assert lines[-3].startswith("Digest: sha256:")
    assert lines[-2:] == [f"Status: Downloaded newer image for {ref}", ref]
    assert len(registry.blob_gets()) == 2  # the layer and the config
    again = daemon.docker("pull", ref)
    assert messages(again.stdout)[-2] == f"Status: Image is up to date for {ref}"
    out = daemon.docker("run", "--rm", ref, "echo", "pulled and running").stdout
    assert out == "pulled and running\n"


def test_pull_errors_leave_nothing(daemon: PortsideDaemon, registry: LoggedRegistry,
                                   tmp_path: Path, store: ImageStore) -> None:
    publish(tmp_path, f"{registry.host}/app:1")
    blobs_before = sorted(store.content.digests())
    tag = daemon.docker("pull", f"{registry.host}/app:nope", check=False)
    assert tag.returncode == 1
    assert tag.stderr.strip().splitlines()[-1].startswith(
        f"Error response from daemon: manifest for {registry.host}/app:nope not found:"
        " manifest unknown"), tag.stderr
    repo = daemon.docker("pull", f"{registry.host}/nothing:1", check=False)
    assert repo.returncode == 1
    assert "not found" in repo.stderr and len(repo.stderr.strip().splitlines()) == 1
    assert sorted(store.content.digests()) == blobs_before
    assert daemon.docker("images", "--format", "{{.Repository}}").stdout == "busybox\n"


def test_push_needs_credentials(daemon: PortsideDaemon, tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text(f"alice:{bcrypt.hashpw(b'wonder', bcrypt.gensalt(4)).decode()}\n")
    locked, stop = serve_registry(tmp_path / "locked", htpasswd=users)
    try:
        ref = f"{locked.host}/team/box:1"
        daemon.docker("tag", "busybox", ref)
        denied = daemon.docker("push", ref, check=False)
        assert denied.returncode == 1
        assert "unauthorized" in denied.stderr.lower(), denied.stderr
        assert locked.uploads() == [] or all("uploads" in p for p in locked.uploads())
        # The client's own credentials travel in X-Registry-Auth.
        config = daemon.sockdir / "docker-config"
        config.mkdir(exist_ok=True)
        token = base64.b64encode(b"alice:wonder").decode()
        (config / "config.json").write_text(json.dumps({"auths": {locked.host: {"auth": token}}}))
        assert "1: digest: sha256:" in daemon.docker("push", ref).stdout
        daemon.docker("rmi", ref)
        again = daemon.docker("pull", ref).stdout
        assert "Already exists" in again and "Status: Downloaded newer image" in again
    finally:
        stop()


def test_tag_rmi_and_their_refusals(daemon: PortsideDaemon) -> None:
    daemon.docker("tag", "busybox", "mine:1")
    daemon.docker("tag", "busybox", "mine:2")
    shown = daemon.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert sorted(shown) == ["busybox:latest", "mine:1", "mine:2"]
    image_id = daemon.docker("image", "inspect", "-f", "{{.Id}}", "busybox").stdout.strip()

    assert daemon.docker("rmi", "mine:1").stdout == "Untagged: mine:1\n"
    refused = daemon.docker("rmi", image_id[7:19], check=False)
    assert refused.returncode == 1
    assert "(must be forced) - image is referenced in multiple repositories" in refused.stderr

    missing = daemon.docker("tag", "nope", "x:1", check=False)
    assert missing.returncode == 1 and "No such image: nope:latest" in missing.stderr
    missing = daemon.docker("rmi", "nope", check=False)
    assert missing.returncode == 1 and "No such image: nope:latest" in missing.stderr
    missing = daemon.docker("history", "nope", check=False)
    assert missing.returncode == 1 and "No such image: nope:latest" in missing.stderr
    missing = daemon.docker("save", "-o", str(daemon.sockdir / "x.tar"), "busybox", "nope",
                            check=False)
    assert missing.returncode == 1 and "No such image: nope:latest" in missing.stderr
    missing = daemon.docker("push", "127.0.0.1:1/nope:1", check=False)
    assert missing.returncode == 1
    assert "An image does not exist locally with the tag: 127.0.0.1:1/nope" in missing.stderr

    daemon.docker("create", "--name", "holder", "busybox", "true")
    assert daemon.docker("rmi", "mine:2").stdout == "Untagged: mine:2\n"  # another name is left
    in_use = daemon.docker("rmi", "busybox", check=False)
    assert in_use.returncode == 1
    assert in_use.stderr.startswith(
        'Error response from daemon: conflict: unable to remove repository reference "busybox"'
        f" (must force) - container {daemon.docker('ps', '-aq').stdout.strip()} is using its"
        f" referenced image {image_id[7:19]}"), in_use.stderr
    stopped = daemon.docker("rmi", image_id, check=False)
    assert f"conflict: unable to delete {image_id[7:19]} (must be forced) - image is being used" \
        " by stopped container" in stopped.stderr, stopped.stderr
    daemon.docker("rm", "holder")
    out = daemon.docker("rmi", image_id).stdout
    assert out == f"Untagged: busybox:latest\nDeleted: {image_id}\n"
    assert daemon.docker("images", "-q").stdout == ""


def test_save_load_round_trip_and_bad_archive(daemon: PortsideDaemon, tmp_path: Path) -> None:
    daemon.docker("tag", "busybox", "copy:1")
    archive = tmp_path / "images.tar"
    daemon.docker("save", "-o", str(archive), "busybox", "copy:1")
    assert archive.stat().st_size > 100_000
    image_id = daemon.docker("image", "inspect", "-f", "{{.Id}}", "busybox").stdout.strip()
    daemon.docker("rmi", "-f", image_id)
    assert daemon.docker("images", "-q").stdout == ""
    loaded = daemon.docker("load", "-i", str(archive)).stdout
    assert "Loaded image: busybox:latest" in loaded and "Loaded image: copy:1" in loaded
    assert daemon.docker("image", "inspect", "-f", "{{.Id}}", "copy:1").stdout.strip() == image_id
    assert daemon.docker("run", "--rm", "copy:1", "echo", "ok").stdout == "ok\n"

    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"this is not an archive\n" * 100)
    refused = daemon.docker("load", "-i", str(bad), check=False)
    assert refused.returncode == 1
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert sorted(daemon.docker("images", "--format", "{{.Repository}}").stdout.split()) == \
        ["busybox", "copy"]


def test_history_prune_and_import(daemon: PortsideDaemon, store: ImageStore,
                                  tmp_path: Path) -> None:
    rows = [json.loads(line) for line in daemon.docker(
        "history", "--no-trunc", "--format", "{{json .}}", "busybox").stdout.splitlines()]
    assert rows and rows[0]["ID"].startswith("sha256:")
    assert all(r["ID"] == "<missing>" for r in rows[1:])

    dangling = add_image(store, [{"junk.bin": os.urandom(300_000)}], compression="")
    labelled = add_image(store, [{"keep.bin": b"k"}], config={"Labels": {"keep": "yes"}})
    pruned = daemon.docker("image", "prune", "-f", "--filter", "label!=keep").stdout
    assert f"deleted: {dangling.image.id}" in pruned
    assert labelled.image.id not in pruned
    reclaimed = pruned.strip().splitlines()[-1]
    assert reclaimed.startswith("Total reclaimed space: ") and reclaimed != \
        "Total reclaimed space: 0B", pruned
    assert not store.content.exists(dangling.image.manifest_digest)
    everything = daemon.docker("image", "prune", "-a", "-f").stdout
    assert "untagged: busybox:latest" in everything

    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(tar_bytes({"hello.txt": b"imported\n"}))
    with open(rootfs) as f:
        out = daemon.docker("import", "-c", "CMD [\"/hello\"]", "-", "imported:1",
                            input=f.read()).stdout
    assert out.strip().startswith("sha256:")
    doc = json.loads(daemon.docker("image", "inspect", "imported:1").stdout)[0]
    assert doc["Config"]["Cmd"] == ["/hello"] and len(doc["RootFS"]["Layers"]) == 1
    bad = daemon.docker("import", "-", "broken:1", input="not a tarball at all", check=False)
    assert bad.returncode == 1 and "not a tarball" in bad.stderr


def test_image_events(daemon: PortsideDaemon, registry: LoggedRegistry, tmp_path: Path) -> None:
    publish(tmp_path, f"{registry.host}/ev:1", layers=1)
    since = str(time.time() - 1)
    daemon.docker("tag", "busybox", "ev:tag")
    daemon.docker("rmi", "ev:tag")
    daemon.docker("pull", f"{registry.host}/ev:1")
    daemon.docker("save", "-o", str(tmp_path / "ev.tar"), f"{registry.host}/ev:1")
    daemon.docker("load", "-i", str(tmp_path / "ev.tar"))
    daemon.docker("rmi", f"{registry.host}/ev:1")
    daemon.docker("import", "-", "ev:imported", input=tar_bytes({"f": b"f"}).decode())
    daemon.docker("tag", "busybox", f"{registry.host}/ev:pushed")
    daemon.docker("push", f"{registry.host}/ev:pushed")
    until = str(time.time() + 1)
    out = daemon.docker("events", "--filter", "type=image", "--since", since, "--until", until,
                        "--format", "{{json .}}").stdout
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["Action"] for e in events] == ["tag", "untag", "pull", "save", "load", "untag",
                                             "delete", "import", "tag", "push"], events
    assert events[-1]["Actor"]["ID"] == f"{registry.host}/ev:pushed"
    assert all(e["status"] == e["Action"] and e["id"] == e["Actor"]["ID"] for e in events)
    assert all(e["Type"] == "image" for e in events)
    assert events[0]["Actor"]["Attributes"]["name"] == "ev:tag"
    assert events[2]["Actor"]["ID"] == f"{registry.host}/ev:1"
    assert events[2]["Actor"]["Attributes"]["team"] == "blue"  # the image's labels


def test_two_pulls_at_once_fetch_each_layer_once(daemon: PortsideDaemon,
                                                 registry: LoggedRegistry,
                                                 tmp_path: Path) -> None:
    ref = f"{registry.host}/big:1"
    publish(tmp_path, ref, layers=3, size=6 << 20)
    registry.requests.clear()
    results: list[Any] = [None, None]

    def pull(i: int) -> None:
        results[i] = daemon.docker("pull", ref, check=False)

    threads = [threading.Thread(target=pull, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for r in results:
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip().splitlines()[-2].startswith("Status: "), r.stdout
    gets = registry.blob_gets()
    assert len(gets) == len(set(gets)) == 4, gets  # three layers and the config, once each
    layers = daemon.docker("image", "inspect", "-f", "{{len .RootFS.Layers}}", ref).stdout
    assert layers == "3\n"


def test_pull_every_tag(daemon: PortsideDaemon, registry: LoggedRegistry, tmp_path: Path) -> None:
    for tag in ("1", "2"):
        publish(tmp_path, f"{registry.host}/multi:{tag}", layers=1)
    out = daemon.docker("pull", "-a", f"{registry.host}/multi").stdout
    lines = messages(out)
    assert [line for line in lines if "Pulling from" in line] == \
        ["1: Pulling from multi", "2: Pulling from multi"], out
    assert f"Status: Downloaded newer image for {registry.host}/multi" in lines
    shown = daemon.docker("images", "--format", "{{.Tag}}", f"{registry.host}/multi").stdout
    assert sorted(shown.split()) == ["1", "2"]


def test_daemon_uses_its_own_credentials(daemon: PortsideDaemon, tmp_path: Path) -> None:
    """With no X-Registry-Auth, the daemon's own config.json (`portside login`) is used."""
    users = tmp_path / "users"
    users.write_text(f"carol:{bcrypt.hashpw(b'secret', bcrypt.gensalt(4)).decode()}\n")
    locked, stop = serve_registry(tmp_path / "locked", htpasswd=users)
    try:
        own = tmp_path / "daemon-docker-config"
        daemon.stop()
        daemon.env["DOCKER_CONFIG"] = str(own)
        daemon.start()
        daemon.cli("login", locked.host, "-u", "carol", "--password-stdin", input="secret\n")
        assert (own / "config.json").exists()
        ref = f"{locked.host}/carol/box:1"
        daemon.docker("tag", "busybox", ref)
        assert "1: digest: sha256:" in daemon.docker("push", ref).stdout  # the client has none
        assert locked.uploads()
    finally:
        stop()
