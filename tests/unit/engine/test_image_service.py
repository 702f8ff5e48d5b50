"""The engine's ImageService on its own: a store in a temporary root, an EventBus, a lock,
and a table of which holders are running containers (no daemon, no registry)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
from pathlib import Path

import pytest
from helpers.imagefactory import add_image, tar_bytes

from portside.engine.events import EventBus
from portside.engine.imageimport import apply_changes
from portside.engine.imageprogress import PullProgress, bar, human_size
from portside.engine.images import ImageService
from portside.engine.imagetypes import NoSuchImage, PruneFilters, RegistryAuth
from portside.errors import Conflict, InvalidArgument
from portside.registry.transfer import InFlight
from portside.state.memory import MemoryBackend
from portside.store.images import ImageStore


@pytest.fixture
def running() -> dict[str, bool]:
    return {}


@pytest.fixture
def service(store: ImageStore, running: dict[str, bool]) -> ImageService:
    return ImageService(store, EventBus(MemoryBackend()), threading.RLock(),
                        lambda h: running.get(h, True))


def recorded(service: ImageService) -> list[dict[str, object]]:
    service.events.flush()
    return service.events.since(0)


def actions(service: ImageService) -> list[str]:
    return [str(e["Action"]) for e in recorded(service)]


def test_rmi_untags_then_deletes_as_docker(service: ImageService, store: ImageStore) -> None:
    built = add_image(store, [{"a": b"a"}], tags=("app:1", "app:2"))
    assert service.remove("app:1") == [("Untagged", "app:1")]
    image_id = built.image.id
    assert service.remove("app:2") == [("Untagged", "app:2"), ("Deleted", image_id)]
    assert actions(service) == ["untag", "untag", "delete"]
    assert not store.content.exists(built.image.manifest_digest)
    with pytest.raises(NoSuchImage, match="No such image: app:2"):
        service.remove("app:2")


def test_rmi_by_id_needs_force_for_several_names(service: ImageService, store: ImageStore) -> None:
    built = add_image(store, [{"a": b"a"}], tags=("one:1", "two:1"))
    short = built.image.short_id
    with pytest.raises(Conflict, match=f"unable to delete {short} \\(must be forced\\) - image is"
                                       " referenced in multiple repositories"):
        service.remove(short)
    assert service.remove(short, force=True) == [
        ("Untagged", "one:1"), ("Untagged", "two:1"), ("Deleted", built.image.id)]


def test_rmi_and_containers(service: ImageService, store: ImageStore,
                            running: dict[str, bool]) -> None:
    built = add_image(store, [{"a": b"a"}], tags=("app:1",))
    store.lease("c" * 64, built.image)
    running["c" * 64] = False
    with pytest.raises(Conflict, match='unable to remove repository reference "app:1"'
                                       f" \\(must force\\) - container {'c' * 12}"):
        service.remove("app:1")
    with pytest.raises(Conflict, match=f"being used by stopped container {'c' * 12}"):
        service.remove(built.image.id)
    running["c" * 64] = True
    with pytest.raises(Conflict, match="\\(cannot be forced\\) - image is being used by running"):
        service.remove(built.image.id, force=True)
    # -f on the name: the name goes, the image stays for the running container.
    assert service.remove("app:1", force=True) == [("Untagged", "app:1")]
    assert store.get(built.image.id).tags == ()


def test_prune_filters_and_space(service: ImageService, store: ImageStore) -> None:
    old = add_image(store, [{"old": b"o" * 5000}], compression="")
    keep = add_image(store, [{"keep": b"k"}], config={"Labels": {"keep": "yes"}})
    tagged = add_image(store, [{"t": b"t"}], tags=("t:1",))
    report = service.prune(PruneFilters(not_labels=["keep"]))
    assert report.removed == [("Deleted", old.image.id)]
    assert report.reclaimed >= 5000
    assert service.prune(PruneFilters(until=0)).removed == []  # all were created after 1970
    report = service.prune(PruneFilters(dangling_only=False, labels=["keep=yes"]))
    assert report.removed == [("Deleted", keep.image.id)]
    report = service.prune(PruneFilters(dangling_only=False))
    assert report.removed == [("Untagged", "t:1"), ("Deleted", tagged.image.id)]


def test_tag_history_and_errors(service: ImageService, store: ImageStore) -> None:
    built = add_image(store, [{"a": b"a"}, {"b": b"b"}], tags=("app:1",))
    service.tag("app:1", "other/app", "2")
    assert store.get("other/app:2").id == built.image.id
    assert recorded(service)[-1]["Actor"] == {"ID": built.image.id,
                                                  "Attributes": {"name": "other/app:2"}}
    with pytest.raises(NoSuchImage):
        service.tag("nope", "x", "1")
    with pytest.raises(InvalidArgument):
        service.tag("app:1", "Bad Name", "")
    rows = service.history("app:1")
    assert [r.id for r in rows] == [built.image.id, "<missing>"]
    assert rows[0].tags == ["app:1", "other/app:2"] and rows[1].tags is None
    assert rows[0].created == 0 and rows[0].created_by == "test layer 1"  # no time recorded


def test_import_of_plain_and_gzip_tarballs(service: ImageService, store: ImageStore) -> None:
    import gzip

    raw = tar_bytes({"etc/motd": b"hi\n"})
    plain = service.import_tarball(io.BytesIO(raw), "imp", "1", "", ["CMD [\"/bin/sh\"]"])
    assert store.config(plain).diff_ids == [store.manifest(plain).layers[0].digest]
    assert store.config(plain).config["Cmd"] == ["/bin/sh"]
    packed = service.import_tarball(io.BytesIO(gzip.compress(raw)), "imp", "2")
    assert store.config(packed).diff_ids == store.config(plain).diff_ids
    blobs = sorted(store.content.digests())
    with pytest.raises(InvalidArgument, match="not a tarball"):
        service.import_tarball(io.BytesIO(b"plain words, no tar"), "bad", "1")
    with pytest.raises(InvalidArgument, match="not a tarball"):
        service.import_tarball(io.BytesIO(gzip.compress(raw)[:40]), "bad", "1")
    assert sorted(store.content.digests()) == blobs  # nothing half-written


def test_changes_of_docker_import() -> None:
    config: dict[str, object] = {}
    apply_changes(config, ["ENV A=1 B=2", "ENV A 3", "CMD echo hi", "EXPOSE 80 53/udp",
                           "LABEL tier=web", "WORKDIR /srv", "USER nobody"])
    assert config == {"Env": ["B=2", "A=3"], "Cmd": ["/bin/sh", "-c", "echo hi"],
                      "ExposedPorts": {"80/tcp": {}, "53/udp": {}}, "Labels": {"tier": "web"},
                      "WorkingDir": "/srv", "User": "nobody"}
    with pytest.raises(InvalidArgument, match="RUN is not a valid change command"):
        apply_changes(config, ["RUN true"])


def test_registry_auth_header() -> None:
    def encode(doc: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")

    assert RegistryAuth.decode(encode({"username": "u", "password": "p"})) == RegistryAuth("u", "p")
    pair = base64.b64encode(b"bob:s3:cret").decode()
    assert RegistryAuth.decode(encode({"auth": pair})) == RegistryAuth("bob", "s3:cret")
    assert RegistryAuth.decode(encode({})) is None
    assert RegistryAuth.decode("") is None
    with pytest.raises(InvalidArgument):
        RegistryAuth.decode("!!!not base64 json")


def test_progress_messages() -> None:
    assert human_size(999) == "999B" and human_size(1234567) == "1.235MB"
    assert bar(50, 100).startswith("[" + "=" * 24 + ">" + " " * 25 + "]")
    out: list[dict[str, object]] = []
    progress = PullProgress(out.append, ["sha256:" + "a" * 64])
    progress.announce(lambda d: False)
    progress.done("sha256:" + "c" * 64, "Pull complete")  # the config: silent
    progress.start("sha256:" + "a" * 64, 10)
    progress.advance("sha256:" + "a" * 64, 10)
    progress.done("sha256:" + "a" * 64, "Pull complete")
    assert [m["status"] for m in out] == ["Pulling fs layer", "Downloading", "Verifying Checksum",
                                          "Download complete", "Pull complete"]
    assert out[1]["progressDetail"] == {"current": 10, "total": 10} and out[1]["id"] == "a" * 12


def test_inflight_shares_one_download_across_loops(tmp_path: Path) -> None:
    inflight = InFlight()
    fetched: list[int] = []
    present = threading.Event()
    gate = threading.Event()
    started = threading.Event()

    async def download() -> None:
        fetched.append(1)
        started.set()
        await asyncio.to_thread(gate.wait, 10)
        present.set()

    results: list[bool] = []

    def pull() -> None:
        results.append(asyncio.run(inflight.fetch("sha256:x", present.is_set, download)))

    threads = [threading.Thread(target=pull) for _ in range(3)]
    for t in threads:
        t.start()
    assert started.wait(10)
    gate.set()
    for t in threads:
        t.join(10)
    assert fetched == [1] and sorted(results) == [False, False, True]


@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_load_reads_both_archive_formats(service: ImageService, store: ImageStore,
                                         fmt: str) -> None:
    from portside.store import archive

    built = add_image(store, [{"a": b"a" * 1000}], tags=("app:1",))
    saved = io.BytesIO()
    archive.save(store, ["app:1"], saved, fmt)
    service.remove("app:1")
    loaded = service.load(io.BytesIO(saved.getvalue()))
    assert [i.id for i in loaded] == [built.image.id] and loaded[0].tags == ("docker.io/library/app:1",)
    assert actions(service)[-1] == "load"
    with pytest.raises(InvalidArgument):
        service.load(io.BytesIO(b"\0" * 4096))


def test_platforms() -> None:
    from portside.engine.imagetypes import parse_platform
    from portside.oci.model import Platform

    assert parse_platform("") is None
    assert parse_platform("linux/arm64/v8") == Platform("linux", "arm64", "v8")
    with pytest.raises(InvalidArgument, match="invalid platform"):
        parse_platform("linux")
