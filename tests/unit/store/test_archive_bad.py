"""Bad archives: each gives one error naming what and where, and the store stays as it was."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.imagefactory import add_image, sha, tar_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portside.errors import PortsideError
from portside.oci import mediatypes as mt
from portside.oci.model import canonical_json
from portside.store import archive
from portside.store.archive import DiffHasher, InvalidArchive
from portside.store.images import ImageStore

from .test_archive import desc, image_blobs, oci_layout


def snapshot(store: ImageStore) -> tuple[list[str], list[str], list[str]]:
    return (
        sorted(i.manifest_digest for i in store.list()),
        sorted(store.content.digests()),
        sorted(p.name for p in store.content.ingest_dir.iterdir()),
    )


def refuse(store: ImageStore, data: bytes, *expected: str) -> str:
    """Load `data`; it must fail with a message holding `expected`, leaving the store as it was."""
    before = snapshot(store)
    with pytest.raises(InvalidArchive) as info:
        archive.load(store, io.BytesIO(data), "bad.tar")
    message = str(info.value)
    assert message.startswith("bad.tar: ") and "\n" not in message
    for part in expected:
        assert part in message
    assert snapshot(store) == before
    return message


@pytest.fixture
def existing(store: ImageStore) -> ImageStore:
    """A store that already holds an image: a failed load must not disturb it."""
    add_image(store, [{"etc/keep": b"keep"}], tags=("keep",))
    return store


def good_oci() -> tuple[bytes, bytes, bytes, dict[str, object]]:
    manifest, config, layer = image_blobs()
    index = {
        "schemaVersion": 2,
        "manifests": [desc(manifest, annotations={"io.containerd.image.name": "a/b:1"})],
    }
    return manifest, config, layer, index


def test_truncated_archive(existing: ImageStore) -> None:
    manifest, config, layer, index = good_oci()
    data = oci_layout([manifest, config, layer], index)
    for cut in (700, len(data) // 3, len(data) // 2):  # the end is zero padding: cut earlier
        refuse(existing, data[:cut], "truncated")
    # Cut exactly after a member, or a header spoilt: tarfile alone would call that the end.
    boundary = 512 + (len(manifest) + 511) // 512 * 512
    refuse(existing, data[:boundary], "ends before its end-of-archive marker")
    spoilt = bytearray(data)
    spoilt[boundary + 3] ^= 0x55
    refuse(existing, bytes(spoilt), f"bad member header at byte {boundary}")


def test_garbage_and_empty_input(existing: ImageStore) -> None:
    refuse(existing, b"", "empty input")
    refuse(existing, b"this is not a tar archive at all" * 40, "corrupt or truncated")
    refuse(existing, gzip.compress(b"not a tar inside gzip" * 40), "corrupt or truncated")
    refuse(existing, b"\x1f\x8b\x08\x00garbage-after-gzip-magic" * 10, "corrupt or truncated")


def test_missing_metadata(existing: ImageStore) -> None:
    refuse(existing, tar_bytes({"blobs/sha256/x": b"1"}), "neither manifest.json nor index.json")


def test_blob_with_wrong_digest(existing: ImageStore) -> None:
    manifest, config, layer, index = good_oci()
    files: dict[str, bytes | tarfile.TarInfo] = {
        f"blobs/sha256/{sha(b)[7:]}": b for b in (manifest, config)
    }
    files[f"blobs/sha256/{sha(layer)[7:]}"] = layer[:20] + bytes([layer[20] ^ 1]) + layer[21:]
    files["index.json"] = canonical_json(index)
    refuse(existing, tar_bytes(files), f"member blobs/sha256/{sha(layer)[7:]}", "digest mismatch")


def test_diff_id_mismatch_in_docker_archive(existing: ImageStore) -> None:
    layer = tar_bytes({"a": b"1"})
    config = json.loads(image_blobs()[1])
    config["rootfs"]["diff_ids"] = ["sha256:" + "0" * 64]
    config_bytes = canonical_json(config)
    entry = {"Config": "c.json", "RepoTags": ["x:1"], "Layers": ["l/layer.tar"]}
    data = tar_bytes(
        {
            "c.json": config_bytes,
            "l/layer.tar": layer,
            "manifest.json": json.dumps([entry]).encode(),
        }
    )
    refuse(existing, data, "layer l/layer.tar", "the config says sha256:000")


def test_unknown_media_types(existing: ImageStore) -> None:
    manifest, config, layer, index = good_oci()
    odd = {**index, "manifests": [desc(manifest, "application/x-unknown")]}
    refuse(existing, oci_layout([manifest, config, layer], odd), "unsupported media type")
    doc = json.loads(manifest)
    doc["layers"][0]["mediaType"] = "application/vnd.example.layer"
    weird = canonical_json(doc)
    refuse(
        existing,
        oci_layout([weird, config, layer], {**index, "manifests": [desc(weird)]}),
        "layers[0]",
        "unsupported media type 'application/vnd.example.layer'",
    )


def test_referenced_blob_absent(existing: ImageStore) -> None:
    manifest, config, layer, index = good_oci()
    refuse(existing, oci_layout([manifest, config], index), f"blobs/sha256/{sha(layer)[7:]}")
    refuse(existing, oci_layout([config, layer], index), "index.json manifests[0]")
    entry = {"Config": "c.json", "Layers": ["gone/layer.tar"]}
    data = tar_bytes({"c.json": config, "manifest.json": json.dumps([entry]).encode()})
    refuse(existing, data, "'gone/layer.tar', which is not in the archive")


def test_descriptor_size_wrong(existing: ImageStore) -> None:
    manifest, config, layer, index = good_oci()
    doc = json.loads(manifest)
    doc["layers"][0]["size"] += 1
    bad = canonical_json(doc)
    refuse(
        existing,
        oci_layout([bad, config, layer], {**index, "manifests": [desc(bad)]}),
        f"blob {sha(layer)}",
    )


def test_corrupt_compressed_layer(existing: ImageStore) -> None:
    manifest, config, layer, index = good_oci()
    broken = layer[: len(layer) // 2]  # stored under its own (correct) digest, but truncated gzip
    doc = json.loads(manifest)
    doc["layers"][0].update(digest=sha(broken), size=len(broken))
    bad = canonical_json(doc)
    refuse(
        existing,
        oci_layout([bad, config, broken], {**index, "manifests": [desc(bad)]}),
        "layers[0]",
        "truncated gzip",
    )


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.mark.parametrize(
    ("member", "message"),
    [
        ("../evil", "refusing member '../evil'"),
        ("/etc/evil", "refusing member '/etc/evil'"),
        ("blobs/../../evil", "refusing member 'blobs/../../evil'"),
        (_link("x/layer.tar", "../../etc/passwd"), "refusing link 'x/layer.tar'"),
        (_link("x/layer.tar", "/etc/passwd"), "refusing link 'x/layer.tar'"),
        (_link("x", "../up", tarfile.LNKTYPE), "refusing link 'x'"),
    ],
)
def test_path_tricks(existing: ImageStore, member: str | tarfile.TarInfo, message: str) -> None:
    manifest, config, layer, index = good_oci()
    name = member if isinstance(member, str) else member.name
    evil: dict[str, bytes | tarfile.TarInfo] = {name: b"x" if isinstance(member, str) else member}
    refuse(existing, oci_layout([manifest, config, layer], index, evil), message)  # type: ignore[arg-type]


def test_device_member_refused(existing: ImageStore) -> None:
    dev = tarfile.TarInfo("dev/null")
    dev.type = tarfile.CHRTYPE
    refuse(existing, tar_bytes({"dev/null": dev}), "not a regular file")


def test_bad_json_and_bad_names(existing: ImageStore) -> None:
    refuse(existing, tar_bytes({"manifest.json": b"{nope"}), "manifest.json is not valid JSON")
    manifest, config, layer, _ = good_oci()
    bad_name = {
        "schemaVersion": 2,
        "manifests": [desc(manifest, annotations={"io.containerd.image.name": "UPPER/Case:1"})],
    }
    refuse(existing, oci_layout([manifest, config, layer], bad_name), "invalid reference")


def test_cli_reports_one_line_and_exit_code(existing: ImageStore, tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"garbage" * 100)
    before = snapshot(existing)
    result = subprocess.run(
        [sys.executable, "-m", "portside", "load", "-i", str(bad)],
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {bad}: corrupt or truncated archive")
    assert result.stdout == b""
    existing.db.execute("SELECT 1")  # still usable
    assert snapshot(existing) == before
    missing = subprocess.run(
        [sys.executable, "-m", "portside", "load", "-i", str(tmp_path / "nope.tar")],
        capture_output=True,
        timeout=120,
    )
    assert missing.returncode == 2 and b"no such file" in missing.stderr


# -- properties --

compressors: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda d: gzip.compress(d, mtime=0),
    "zstd": lambda d: __import__("zstandard").ZstdCompressor().compress(d),
}


@given(
    parts=st.lists(st.binary(max_size=3000), min_size=1, max_size=3),
    kind=st.sampled_from(sorted(compressors)),
    cuts=st.lists(st.integers(min_value=1, max_value=500), max_size=20),
)
def test_diff_hasher_matches_whatever_the_chunking(
    parts: list[bytes], kind: str, cuts: list[int]
) -> None:
    """Multi-member streams, split anywhere, hash to the digest of their plain content."""
    data = b"".join(compressors[kind](p) for p in parts)
    hasher = DiffHasher()
    pos = 0
    for cut in cuts:
        hasher.update(data[pos : pos + cut])
        pos += cut
    hasher.update(data[pos:])
    assert hasher.finish() == sha(b"".join(parts))
    truncated = DiffHasher()
    truncated.update(data[:-1])
    with pytest.raises(ValueError):
        truncated.finish()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mangled_archives_fail_cleanly(tmp_path: Path, data: st.DataObject) -> None:
    """Any byte flipped, cut or inserted: the load succeeds whole or fails with a PortsideError."""
    manifest, config, layer, index = good_oci()
    original = bytearray(oci_layout([manifest, config, layer], index))
    op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
    pos = data.draw(st.integers(min_value=0, max_value=len(original) - 1))
    if op == "flip":
        original[pos] ^= data.draw(st.integers(min_value=1, max_value=255))
    elif op == "cut":
        del original[pos:]
    else:
        original[pos:pos] = data.draw(st.binary(min_size=1, max_size=600))
    store = ImageStore(Path(tempfile.mkdtemp(dir=tmp_path)))
    try:
        try:
            loaded = archive.load(store, io.BytesIO(bytes(original)))
        except PortsideError as exc:
            assert "\n" not in str(exc)
            assert store.list() == []
            assert list(store.content.digests()) == []
        else:
            assert [i.manifest_digest for i in loaded] == [sha(manifest)]
    finally:
        store.db.close()


def test_unused_blobs_in_an_archive_are_not_kept(store: ImageStore) -> None:
    manifest, config, layer, index = good_oci()
    junk = b"an unreferenced file"
    archive.load(store, io.BytesIO(oci_layout([manifest, config, layer, junk], index)))
    assert sorted(store.content.digests()) == sorted(sha(b) for b in (manifest, config, layer))


def test_other_compressions_of_layers_refused(existing: ImageStore) -> None:
    import lzma

    raw = tar_bytes({"a": b"1"})
    xz = lzma.compress(raw)
    config = json.loads(image_blobs()[1])
    config["rootfs"]["diff_ids"] = [sha(raw)]
    config_bytes = canonical_json(config)
    entry = {"Config": "c.json", "Layers": ["l.tar"]}
    data = tar_bytes(
        {"c.json": config_bytes, "l.tar": xz, "manifest.json": json.dumps([entry]).encode()}
    )
    refuse(existing, data, "layer l.tar", "unsupported layer compression xz")
    assert mt.OCI_LAYER  # media types of what we do accept are in test_archive


def test_directory_that_is_no_layout(existing: ImageStore, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "file").write_bytes(b"x" * 1000)
    before = snapshot(existing)
    with pytest.raises(InvalidArchive, match="no index.json or manifest.json"):
        archive.load(existing, tree)
    assert snapshot(existing) == before


def test_save_to_bad_places(existing: ImageStore, tmp_path: Path) -> None:
    from portside.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="it is a directory"):
        archive.save(existing, ["keep"], tmp_path)
    with pytest.raises(InvalidArgument, match="No such file or directory"):
        archive.save(existing, ["keep"], tmp_path / "missing" / "x.tar")
    with pytest.raises(InvalidArgument, match="unknown archive format"):
        archive.save(existing, ["keep"], tmp_path / "x.tar", format="tgz")
    assert list(tmp_path.glob("*.tar")) == []


def test_failed_save_leaves_no_file(store: ImageStore, tmp_path: Path) -> None:
    from portside.errors import BlobUnknown

    built = add_image(store, [{"a": b"1"}, {"b": b"2"}], tags=("app:1",))
    store.content.delete(sha(built.layers[1]))  # a store damaged behind portside's back
    out = tmp_path / "app.tar"
    for fmt in ("oci", "docker"):
        with pytest.raises(BlobUnknown):
            archive.save(store, ["app:1"], out, format=fmt)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]  # the store, nothing else


def test_broken_output_stream(store: ImageStore) -> None:
    add_image(store, [{"a": b"x" * 300_000}], tags=("app:1",), compression="")

    class Broken(io.RawIOBase):
        written = 0

        def writable(self) -> bool:
            return True

        def write(self, data: bytes) -> int:  # type: ignore[override]
            if self.written > 100_000:
                raise BrokenPipeError(32, "Broken pipe")
            self.written += len(data)
            return len(data)

    with pytest.raises(BrokenPipeError):
        archive.save(store, ["app:1"], Broken())  # type: ignore[arg-type]
