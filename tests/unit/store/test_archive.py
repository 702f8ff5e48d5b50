"""save -> load round trips, the archive layouts other tools write, and the CLI commands."""

from __future__ import annotations

import gzip
import io
import json
import lzma
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import zstandard
from click.testing import CliRunner
from helpers.imagefactory import Built, add_image, sha, tar_bytes

from portside.cli.main import cli
from portside.oci import mediatypes as mt
from portside.oci.model import canonical_json, host_platform
from portside.store import archive
from portside.store.images import ImageStore


@pytest.fixture
def other(tmp_path: Path) -> ImageStore:
    """A second, empty store to load into."""
    s = ImageStore(tmp_path / "other")
    yield s  # type: ignore[misc]
    s.db.close()


def members(path: Path | bytes) -> dict[str, bytes]:
    fileobj = io.BytesIO(path) if isinstance(path, bytes) else open(path, "rb")  # noqa: SIM115
    with fileobj, tarfile.open(fileobj=fileobj) as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


def make_tar(files: dict[str, bytes | tarfile.TarInfo]) -> bytes:
    return tar_bytes(files)


def busybox(store: ImageStore, compression: str = "gzip", tag: str = "busybox") -> Built:
    return add_image(
        store,
        [{"bin/busybox": b"\x7fELF" + b"x" * 5000}, {"etc/passwd": b"root:x:0:0::/root:/bin/sh\n"}],
        tags=(tag,),
        compression=compression,
    )


@pytest.mark.parametrize("compression", ["gzip", "zstd", ""])
def test_oci_round_trip_keeps_digests(
    store: ImageStore, other: ImageStore, tmp_path: Path, compression: str
) -> None:
    built = busybox(store, compression)
    out = tmp_path / "bb.tar"
    archive.save(store, ["busybox"], out)
    loaded = archive.load(other, out)
    assert [i.manifest_digest for i in loaded] == [built.image.manifest_digest]
    assert loaded[0].tags == ("docker.io/library/busybox:latest",)
    image = other.get("busybox:latest")
    assert image.config_digest == built.image.config_digest
    assert other.manifest_bytes(image) == built.manifest
    index = json.loads(members(out)["index.json"])
    annotations = index["manifests"][0]["annotations"]
    assert annotations["io.containerd.image.name"] == "docker.io/library/busybox:latest"
    assert annotations["org.opencontainers.image.ref.name"] == "latest"
    # The same blobs are also described as a docker archive, for `docker load` before 25.
    legacy = json.loads(members(out)["manifest.json"])
    assert legacy == [
        {
            "Config": f"blobs/sha256/{built.image.config_digest[7:]}",
            "RepoTags": ["docker.io/library/busybox:latest"],
            "Layers": [f"blobs/sha256/{sha(layer)[7:]}" for layer in built.layers],
        }
    ]


@pytest.mark.parametrize("compression", ["gzip", "zstd", ""])
def test_docker_round_trip_keeps_config_and_diff_ids(
    store: ImageStore, other: ImageStore, tmp_path: Path, compression: str
) -> None:
    built = busybox(store, compression)
    out = tmp_path / "bb.tar"
    archive.save(store, ["busybox:latest"], out, format="docker")
    files = members(out)
    manifest = json.loads(files["manifest.json"])
    assert manifest[0]["RepoTags"] == ["docker.io/library/busybox:latest"]
    diff_ids = json.loads(built.config)["rootfs"]["diff_ids"]
    for path, diff_id in zip(manifest[0]["Layers"], diff_ids, strict=True):
        assert sha(files[path]) == diff_id  # layers are plain tars, as docker writes them
    assert json.loads(files["repositories"]) == {"busybox": {"latest": diff_ids[-1][7:]}}
    loaded = archive.load(other, out)
    assert loaded[0].config_digest == built.image.config_digest
    assert other.config(other.get("busybox")).diff_ids == diff_ids
    layers = other.manifest(loaded[0]).layers
    assert {layer.media_type for layer in layers} == {mt.OCI_LAYER}


@pytest.mark.parametrize("fmt", ["oci", "docker"])
def test_several_images_in_one_archive_and_deterministic_output(
    store: ImageStore, other: ImageStore, tmp_path: Path, fmt: str
) -> None:
    shared = {"lib/base": b"base layer"}
    a = add_image(store, [shared, {"a": b"1"}], tags=("app:1", "app:latest"))
    b = add_image(store, [shared, {"b": b"2"}], tags=("myorg/tool:2.0",), compression="zstd")
    first, second = tmp_path / "one.tar", tmp_path / "two.tar"
    archive.save(store, ["app", "myorg/tool:2.0"], first, format=fmt)
    archive.save(store, ["app", "myorg/tool:2.0"], second, format=fmt)
    assert first.read_bytes() == second.read_bytes()
    archive.load(other, first)
    assert other.get("app:1").config_digest == a.image.config_digest
    assert other.get("app:latest").config_digest == a.image.config_digest
    assert other.get("myorg/tool:2.0").config_digest == b.image.config_digest
    with tarfile.open(first) as tar:
        assert all(m.mtime == 0 and m.uid == 0 for m in tar.getmembers())


def test_load_reports_progress_per_blob(store: ImageStore, other: ImageStore) -> None:
    built = busybox(store)
    buf = io.BytesIO()
    archive.save(store, ["busybox"], buf)
    seen: dict[str, tuple[int, int]] = {}
    archive.load(
        other, io.BytesIO(buf.getvalue()), progress=lambda n, d, t: seen.update({n: (d, t)})
    )
    for blob in (built.manifest, built.config, *built.layers):
        assert seen[f"blobs/sha256/{sha(blob)[7:]}"] == (len(blob), len(blob))


def test_save_bare_repository_takes_all_its_tags(
    store: ImageStore, other: ImageStore, tmp_path: Path
) -> None:
    old = busybox(store, tag="busybox:1.35")
    new = add_image(store, [{"bin/busybox": b"new"}], tags=("busybox:1.36",))
    add_image(store, [{"x": b"unrelated"}], tags=("busyboxes:1",))
    out = tmp_path / "all.tar"
    archive.save(store, ["busybox"], out)
    loaded = archive.load(other, out)
    assert sorted(t for i in loaded for t in i.tags) == [
        "docker.io/library/busybox:1.35",
        "docker.io/library/busybox:1.36",
    ]
    assert other.get("busybox:1.35").id == old.image.id
    assert other.get("busybox:1.36").id == new.image.id


def test_save_by_id_is_untagged_and_load_says_id(
    store: ImageStore, other: ImageStore, tmp_path: Path
) -> None:
    built = busybox(store)
    out = tmp_path / "id.tar"
    archive.save(store, [built.image.short_id], out)
    loaded = archive.load(other, out)
    assert loaded[0].tags == () and other.get(built.image.id).tags == ()


@pytest.mark.parametrize("compression", ["gzip", "zstd", "xz"])
def test_load_compressed_archives_from_a_stream(
    store: ImageStore, other: ImageStore, tmp_path: Path, compression: str
) -> None:
    built = busybox(store)
    buf = io.BytesIO()
    archive.save(store, ["busybox"], buf, format="docker")
    data = {
        "gzip": gzip.compress,
        "zstd": zstandard.ZstdCompressor().compress,
        "xz": lzma.compress,
    }[compression](buf.getvalue())
    loaded = archive.load(other, io.BytesIO(data))
    assert loaded[0].config_digest == built.image.config_digest


def test_load_oci_layout_directory(store: ImageStore, other: ImageStore, tmp_path: Path) -> None:
    built = busybox(store)
    out = tmp_path / "bb.tar"
    archive.save(store, ["busybox"], out)
    layout = tmp_path / "layout"
    with tarfile.open(out) as tar:
        tar.extractall(layout, filter="data")
    loaded = archive.load(other, layout)
    assert loaded[0].manifest_digest == built.image.manifest_digest
    assert other.get("busybox").tags == ("docker.io/library/busybox:latest",)


def _config(diff_ids: list[str], cmd: str = "sh") -> bytes:
    plat = host_platform()
    return canonical_json(
        {
            "architecture": plat.architecture,
            "os": plat.os,
            "config": {"Cmd": [cmd]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    )


def test_legacy_docker_archive_with_symlinked_and_gzip_layers(other: ImageStore) -> None:
    """The layout podman and old docker write: `<id>/layer.tar` links, `<config>.json`."""
    plain = tar_bytes({"etc/os-release": b"ID=test\n"})
    zipped_raw = tar_bytes({"bin/sh": b"#!"})
    zipped = gzip.compress(zipped_raw, mtime=0)
    config = _config([sha(plain), sha(zipped_raw)])
    link = tarfile.TarInfo("0123/layer.tar")
    link.type, link.linkname = tarfile.SYMTYPE, "../aaaa.tar"
    data = make_tar(
        {
            f"{sha(config)[7:]}.json": config,
            "aaaa.tar": plain,
            "0123/layer.tar": link,
            "0123/json": b"{}",
            "0123/VERSION": b"1.0",
            "bbbb/layer.tar": zipped,
            "manifest.json": json.dumps(
                [
                    {
                        "Config": f"{sha(config)[7:]}.json",
                        "RepoTags": ["example.com/legacy:1"],
                        "Layers": ["0123/layer.tar", "bbbb/layer.tar"],
                    }
                ]
            ).encode(),
        }
    )
    loaded = archive.load(other, io.BytesIO(data))
    image = other.get("example.com/legacy:1")
    assert image.config_digest == sha(config) == loaded[0].config_digest
    layers = other.manifest(image).layers
    assert [(x.media_type, x.digest) for x in layers] == [
        (mt.OCI_LAYER, sha(plain)),
        (mt.OCI_LAYER_GZIP, sha(zipped)),
    ]


def oci_layout(
    blobs: list[bytes], index: dict[str, object], extra: dict[str, bytes] | None = None
) -> bytes:
    files: dict[str, bytes | tarfile.TarInfo] = {f"blobs/sha256/{sha(b)[7:]}": b for b in blobs}
    files["oci-layout"] = b'{"imageLayoutVersion":"1.0.0"}'
    files["index.json"] = canonical_json(index)
    files.update(extra or {})
    return make_tar(files)


def image_blobs(
    cmd: str = "sh", platform: tuple[str, str] | None = None
) -> tuple[bytes, bytes, bytes]:
    """(manifest, config, layer) of a one-layer OCI image."""
    layer_raw = tar_bytes({"hello": cmd.encode()})
    layer = gzip.compress(layer_raw, mtime=0)
    config = json.loads(_config([sha(layer_raw)], cmd))
    if platform:
        config["os"], config["architecture"] = platform
    config_bytes = canonical_json(config)
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {
                "mediaType": mt.OCI_CONFIG,
                "digest": sha(config_bytes),
                "size": len(config_bytes),
            },
            "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": sha(layer), "size": len(layer)}],
        }
    )
    return manifest, config_bytes, layer


def desc(data: bytes, media_type: str = mt.OCI_MANIFEST, **extra: object) -> dict[str, object]:
    return {"mediaType": media_type, "digest": sha(data), "size": len(data), **extra}


def test_docker25_archive_uses_the_oci_index(other: ImageStore) -> None:
    manifest, config, layer = image_blobs()
    names = {
        "io.containerd.image.name": "docker.io/library/hello:latest",
        "org.opencontainers.image.ref.name": "latest",
    }
    index = {"schemaVersion": 2, "manifests": [desc(manifest, annotations=names)]}
    legacy = json.dumps(
        [
            {
                "Config": f"blobs/sha256/{sha(config)[7:]}",
                "RepoTags": ["hello:latest"],
                "Layers": [f"blobs/sha256/{sha(layer)[7:]}"],
            }
        ]
    ).encode()
    data = oci_layout([manifest, config, layer], index, {"manifest.json": legacy})
    loaded = archive.load(other, io.BytesIO(data))
    assert loaded[0].manifest_digest == sha(manifest)
    assert other.get("hello").manifest_digest == sha(manifest)


def test_nested_index_picks_the_host_platform(other: ImageStore) -> None:
    host = host_platform()
    mine = image_blobs("mine")
    foreign = image_blobs("foreign", ("linux", "s390x"))
    nested = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_INDEX,
            "manifests": [
                desc(foreign[0], platform={"os": "linux", "architecture": "s390x"}),
                desc(mine[0], platform={"os": host.os, "architecture": host.architecture}),
            ],
        }
    )
    index = {
        "schemaVersion": 2,
        "manifests": [
            desc(nested, mt.OCI_INDEX, annotations={"org.opencontainers.image.ref.name": "multi:1"})
        ],
    }
    loaded = archive.load(other, io.BytesIO(oci_layout([*mine, *foreign, nested], index)))
    assert loaded[0].manifest_digest == sha(mine[0])
    assert loaded[0].index_digest == sha(nested)
    assert other.get(f"multi@{sha(nested)}").manifest_digest == sha(mine[0])
    assert other.config(other.get("multi:1")).config["Cmd"] == ["mine"]
    # The other platform's blobs were not kept.
    assert not other.content.exists(sha(foreign[0]))
    assert not other.content.exists(sha(foreign[2]))


def test_bare_tag_ref_name_loads_untagged(other: ImageStore) -> None:
    manifest, config, layer = image_blobs()
    index = {
        "schemaVersion": 2,
        "manifests": [desc(manifest, annotations={"org.opencontainers.image.ref.name": "latest"})],
    }
    loaded = archive.load(other, io.BytesIO(oci_layout([manifest, config, layer], index)))
    assert loaded[0].tags == ()


def test_artifacts_in_an_index_are_skipped(other: ImageStore) -> None:
    manifest, config, layer = image_blobs()
    empty = b"{}"
    signature = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
            "config": desc(empty, mt.OCI_EMPTY),
            "layers": [desc(empty, mt.OCI_EMPTY)],
        }
    )
    index = {
        "schemaVersion": 2,
        "manifests": [
            desc(signature),
            desc(manifest, annotations={"io.containerd.image.name": "a:1"}),
        ],
    }
    loaded = archive.load(
        other, io.BytesIO(oci_layout([manifest, config, layer, signature, empty], index))
    )
    assert [i.manifest_digest for i in loaded] == [sha(manifest)]
    assert not other.content.exists(sha(signature))
    only_artifacts = {"schemaVersion": 2, "manifests": [desc(signature)]}
    with pytest.raises(archive.InvalidArchive, match="holds no image"):
        archive.load(other, io.BytesIO(oci_layout([signature, empty], only_artifacts)))


# -- the commands --


def test_cli_save_and_load_files(store: ImageStore, tmp_path: Path) -> None:
    busybox(store)
    out = tmp_path / "bb.tar"
    runner = CliRunner()
    result = runner.invoke(cli, ["save", "-o", str(out), "--format", "docker", "busybox"])
    assert result.exit_code == 0, result.output
    store.remove("busybox")
    result = runner.invoke(cli, ["load", "-i", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output == "Loaded image: busybox:latest\n"
    assert store.get("busybox:latest")


def test_cli_load_layout_directory(store: ImageStore, tmp_path: Path) -> None:
    busybox(store, tag="example.com/bb:2")
    out = tmp_path / "bb.tar"
    archive.save(store, ["example.com/bb:2"], out)
    layout = tmp_path / "layout"
    with tarfile.open(out) as tar:
        tar.extractall(layout, filter="data")
    store.remove("example.com/bb:2")
    result = portside("load", "-i", str(layout))
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"Loaded image: example.com/bb:2\n"


def test_cli_save_to_stdout_and_load_from_stdin(store: ImageStore) -> None:
    built = busybox(store, tag="myorg/bb:1.0")
    runner = CliRunner()
    saved = runner.invoke(cli, ["save", "myorg/bb:1.0"])
    assert saved.exit_code == 0
    assert "index.json" in members(saved.stdout_bytes)
    store.remove("myorg/bb:1.0")
    result = runner.invoke(cli, ["load", "-q"], input=saved.stdout_bytes)
    assert result.exit_code == 0, result.output
    assert result.output == "Loaded image: myorg/bb:1.0\n"
    assert store.get("myorg/bb:1.0").manifest_digest == built.image.manifest_digest


def portside(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """Run the real command (PORTSIDE_ROOT comes from the `root` fixture)."""
    return subprocess.run(
        [sys.executable, "-m", "portside", *args], input=stdin, capture_output=True, timeout=120
    )


def test_cli_save_unknown_image_writes_nothing(store: ImageStore, tmp_path: Path) -> None:
    out = tmp_path / "none.tar"
    result = portside("save", "-o", str(out), "nosuch")
    assert result.returncode == 1
    assert result.stderr.decode() == "Error: No such image: nosuch:latest\n"
    assert list(tmp_path.glob("*.tar*")) == [] and list(tmp_path.glob(".none*")) == []
