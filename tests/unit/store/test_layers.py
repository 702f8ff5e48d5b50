"""The layer writer: a tree in, a layer out whose tar says exactly what the tree held."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portside.errors import InvalidArgument
from portside.oci import mediatypes as mt
from portside.store.content import ContentStore
from portside.store.imagebuilder import new_image
from portside.store.images import ImageStore
from portside.store.layers import LayerResult, write_entries, write_layer

EPOCH = 1_700_000_000
IS_ROOT = os.geteuid() == 0


def raw_tar(content: ContentStore, layer: LayerResult) -> bytes:
    blob = content.read(layer.digest)
    if layer.media_type == mt.OCI_LAYER_GZIP:
        return gzip.decompress(blob)
    if layer.media_type == mt.OCI_LAYER_ZSTD:
        return zstandard.ZstdDecompressor().decompressobj().decompress(blob)
    return blob


def members(content: ContentStore, layer: LayerResult) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(raw_tar(content, layer))) as tar:
        return {m.name: m for m in tar.getmembers()}


def file_data(content: ContentStore, layer: LayerResult, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(raw_tar(content, layer))) as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


@pytest.fixture
def content(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "store")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A small tree with the kinds of entries a root filesystem has."""
    top = tmp_path / "tree"
    (top / "bin").mkdir(parents=True)
    (top / "etc").mkdir()
    (top / "tmp").mkdir()
    os.chmod(top / "tmp", 0o1777)
    (top / "bin" / "tool").write_bytes(b"#!/bin/sh\necho hi\n")
    os.chmod(top / "bin" / "tool", 0o4755)
    os.link(top / "bin" / "tool", top / "bin" / "tool2")
    os.symlink("tool", top / "bin" / "alias")
    (top / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    os.chmod(top / "etc" / "passwd", 0o644)
    os.mkfifo(top / "etc" / "fifo")
    os.setxattr(top / "etc" / "passwd", "user.note", b"\xff\x00binary")
    if IS_ROOT:
        os.chown(top / "etc" / "passwd", 1000, 1001)
        os.mknod(top / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return top


@pytest.mark.parametrize("compression", ["gzip", "zstd", ""])
def test_digest_diff_id_and_size_describe_the_blob(
    content: ContentStore, tree: Path, compression: str
) -> None:
    layer = write_layer(content, tree, compression)
    blob = content.read(layer.digest)
    tar = raw_tar(content, layer)
    assert layer.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert layer.size == len(blob)
    assert layer.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
    assert layer.uncompressed_size == len(tar)
    types = {"gzip": mt.OCI_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD, "": mt.OCI_LAYER}
    assert layer.media_type == types[compression]
    assert list(content.ingest_dir.iterdir()) == []


def test_entries_keep_modes_owners_links_and_xattrs(content: ContentStore, tree: Path) -> None:
    layer = write_layer(content, tree, "gzip")
    m = members(content, layer)
    assert m["tmp"].isdir() and m["tmp"].mode == 0o1777
    assert m["bin/tool"].isreg() and m["bin/tool"].mode == 0o4755
    assert m["bin/tool2"].islnk() and m["bin/tool2"].linkname == "bin/tool"
    assert m["bin/alias"].issym() and m["bin/alias"].linkname == "tool"
    assert m["etc/fifo"].isfifo()
    assert m["etc/passwd"].pax_headers["SCHILY.xattr.user.note"].encode(
        "utf-8", "surrogateescape"
    ) == b"\xff\x00binary"
    assert file_data(content, layer, "etc/passwd") == b"root:x:0:0:root:/root:/bin/sh\n"
    if IS_ROOT:
        assert (m["etc/passwd"].uid, m["etc/passwd"].gid) == (1000, 1001)
        assert m["null"].ischr() and (m["null"].devmajor, m["null"].devminor) == (1, 3)
    assert all(not (info.uname or info.gname) for info in m.values())


def test_entries_come_in_sorted_order(content: ContentStore, tree: Path) -> None:
    for name in ("b", "a", "C", "a.b", "a-b"):
        (tree / "etc" / name).write_text(name)
    layer = write_layer(content, tree, "")
    with tarfile.open(fileobj=io.BytesIO(raw_tar(content, layer))) as tar:
        names = [m.name for m in tar.getmembers() if m.name.startswith("etc/")]
    assert names == ["etc/C", "etc/a", "etc/a-b", "etc/a.b", "etc/b", "etc/fifo", "etc/passwd"]


def test_gnu_tar_reads_the_layer(content: ContentStore, tree: Path, tmp_path: Path) -> None:
    layer = write_layer(content, tree, "gzip")
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["tar", "-xzf", str(content.path(layer.digest)), "-C", str(out)], check=True)
    assert (out / "bin" / "tool").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert os.stat(out / "bin" / "tool").st_ino == os.stat(out / "bin" / "tool2").st_ino
    assert os.readlink(out / "bin" / "alias") == "tool"


def test_epoch_makes_the_layer_reproducible(content: ContentStore, tree: Path) -> None:
    first = write_layer(content, tree, "gzip", epoch=EPOCH)
    os.utime(tree / "etc" / "passwd", (EPOCH + 5000, EPOCH + 5000))
    second = write_layer(content, tree, "gzip", epoch=EPOCH)
    assert second == first
    assert members(content, first)["etc/passwd"].mtime == EPOCH
    # Without the clamp the changed mtime shows.
    assert write_layer(content, tree, "gzip") != first


def test_same_tree_in_another_place_gives_the_same_digest(
    content: ContentStore, tree: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(tree), str(copy)], check=True)
    os.utime(copy / "etc" / "passwd", (EPOCH + 9, EPOCH + 9))  # after the epoch: clamped
    assert write_layer(content, copy, "zstd", epoch=EPOCH) == write_layer(
        content, tree, "zstd", epoch=EPOCH
    )


@pytest.mark.skipif(not IS_ROOT, reason="whiteouts need mknod and trusted.* xattrs: root only")
def test_overlay_whiteouts_become_oci_whiteouts(content: ContentStore, tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "etc" / "gone-dir").mkdir(parents=True)
    (upper / "opaque").mkdir()
    (upper / "opaque" / "new").write_text("new")
    os.mknod(upper / "etc" / "removed", 0o600 | stat.S_IFCHR, os.makedev(0, 0))
    os.setxattr(upper / "opaque", "trusted.overlay.opaque", b"y")
    m = members(content, write_layer(content, upper, "", whiteouts="overlay"))
    assert "etc/removed" not in m
    assert m["etc/.wh.removed"].isreg() and m["etc/.wh.removed"].size == 0
    assert m["opaque/.wh..wh..opq"].isreg()
    assert m["opaque/new"].isreg()
    assert not any(k.startswith("SCHILY.xattr.trusted.overlay") for k in m["opaque"].pax_headers)
    names = list(m)
    assert names.index("opaque") < names.index("opaque/.wh..wh..opq") < names.index("opaque/new")
    # Without the conversion the device stays a device.
    raw = members(content, write_layer(content, upper, "", whiteouts="none"))
    assert raw["etc/removed"].ischr()
    assert "opaque/.wh..wh..opq" not in raw


def test_generated_entries(content: ContentStore) -> None:
    d = tarfile.TarInfo("etc")
    d.type, d.mode = tarfile.DIRTYPE, 0o755
    f = tarfile.TarInfo("etc/group")
    f.mode = 0o644
    layer = write_entries(content, [(d, None), (f, b"root:x:0:\n")], "gzip")
    m = members(content, layer)
    assert m["etc"].isdir() and m["etc/group"].size == len(b"root:x:0:\n")
    assert file_data(content, layer, "etc/group") == b"root:x:0:\n"


def test_bad_options_are_refused_and_leave_nothing(content: ContentStore, tree: Path) -> None:
    with pytest.raises(InvalidArgument, match="compression 'lz4'"):
        write_layer(content, tree, "lz4")
    with pytest.raises(InvalidArgument, match="whiteout mode"):
        write_layer(content, tree, whiteouts="aufs")
    with pytest.raises(InvalidArgument, match="not a directory"):
        write_layer(content, tree / "etc" / "passwd")
    assert list(content.digests()) == []
    assert list(content.ingest_dir.iterdir()) == []


def test_a_failing_source_leaves_no_blob(content: ContentStore, tree: Path) -> None:
    def entries():  # type: ignore[no-untyped-def]
        info = tarfile.TarInfo("a")
        yield info, b"a"
        raise OSError("disk gone")

    with pytest.raises(OSError):
        write_entries(content, entries(), "gzip")
    assert list(content.digests()) == []
    assert list(content.ingest_dir.iterdir()) == []


names = st.text(
    alphabet=st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=30,
).filter(lambda n: n not in (".", ".."))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(files=st.dictionaries(names, st.binary(max_size=2000), min_size=1, max_size=8))
def test_any_file_names_and_contents_round_trip(
    content: ContentStore, files: dict[str, bytes]
) -> None:
    with tempfile.TemporaryDirectory() as d:
        top = Path(d)
        (top / "sub").mkdir()
        for name, data in files.items():
            (top / "sub" / name).write_bytes(data)
        layer = write_layer(content, top, "zstd", epoch=EPOCH)
        with tarfile.open(fileobj=io.BytesIO(raw_tar(content, layer))) as tar:
            got = {
                m.name.removeprefix("sub/"): tar.extractfile(m).read()  # type: ignore[union-attr]
                for m in tar.getmembers()
                if m.isreg()
            }
        assert got == files


# -- whole images, and the round trip through the snapshot unpacker --


def test_new_image_records_an_oci_image(store: ImageStore, tree: Path) -> None:
    layer = write_layer(store.content, tree, "gzip", epoch=EPOCH)
    with store.importing():
        image = new_image(
            store,
            [layer],
            {"Cmd": ["sh"], "Labels": {"a": "b"}},
            [{"created_by": "step 0", "empty_layer": True}],
            {"io.example.note": "made by a test"},
            ["example/img:1"],
            created="2024-01-01T00:00:00Z",
        )
    assert store.get("example/img:1") == image
    manifest = store.manifest(image)
    assert manifest.media_type == mt.OCI_MANIFEST and manifest.config.media_type == mt.OCI_CONFIG
    assert manifest.layers[0].digest == layer.digest and manifest.layers[0].size == layer.size
    assert manifest.annotations == {
        "org.opencontainers.image.created": "2024-01-01T00:00:00Z",
        "io.example.note": "made by a test",
    }
    config = store.config(image)
    assert config.diff_ids == [layer.diff_id]
    assert config.created == "2024-01-01T00:00:00Z"
    assert config.config == {"Cmd": ["sh"], "Labels": {"a": "b"}}
    # One history entry per layer: the empty one given, plus one added for the real layer.
    assert [bool(h.get("empty_layer")) for h in config.history] == [True, False]


@pytest.mark.skipif(not IS_ROOT, reason="owners, devices and trusted.* xattrs need root")
def test_snapshot_of_a_written_layer_is_the_tree(store: ImageStore, tree: Path) -> None:
    """write_layer then SnapshotStore.prepare gives back the tree, whiteouts included."""
    if not hasattr(store.snapshots, "prepare"):
        pytest.skip("SnapshotStore.prepare is not built yet")
    from portside.oci.model import Descriptor

    os.mknod(tree / "etc" / "gone", 0o600 | stat.S_IFCHR, os.makedev(0, 0))
    (tree / "opaque").mkdir()
    os.setxattr(tree / "opaque", "trusted.overlay.opaque", b"y")
    layer = write_layer(store.content, tree, "zstd", whiteouts="overlay")
    fs = store.snapshots.prepare(
        Descriptor(layer.media_type, layer.digest, layer.size), layer.diff_id
    )
    for rel in ("bin/tool", "bin/tool2", "bin/alias", "etc/passwd", "etc/fifo", "tmp", "null"):
        want, got = os.lstat(tree / rel), os.lstat(fs / rel)
        assert (got.st_mode, got.st_uid, got.st_gid) == (want.st_mode, want.st_uid, want.st_gid), rel
    assert os.stat(fs / "bin/tool").st_ino == os.stat(fs / "bin/tool2").st_ino
    assert (fs / "bin" / "tool").read_bytes() == (tree / "bin" / "tool").read_bytes()
    assert os.getxattr(fs / "etc" / "passwd", "user.note") == b"\xff\x00binary"
    gone = os.lstat(fs / "etc" / "gone")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == os.makedev(0, 0)
    assert os.getxattr(fs / "opaque", "trusted.overlay.opaque") == b"y"


def _big_entries(n: int = 3) -> list[tuple[tarfile.TarInfo, bytes]]:
    out = []
    for i in range(n):
        info = tarfile.TarInfo(f"big{i}")
        data = os.urandom(1 << 19) + b"text " * (1 << 18)  # past the first chunk: the thread
        info.size = len(data)
        out.append((info, data))
    return out


@pytest.mark.parametrize("compression", ["gzip", "zstd", ""])
def test_big_layers_are_compressed_beside_the_tar_and_read_back(tmp_path: Path,
                                                                compression: str) -> None:
    content = ContentStore(tmp_path / "store")
    entries = _big_entries()
    layer = write_entries(content, entries, compression)
    tar = raw_tar(content, layer)
    assert layer.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
    assert layer.uncompressed_size == len(tar)
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        assert [t.extractfile(m).read() for m in t.getmembers()] == [d for _, d in entries]
    again = write_entries(ContentStore(tmp_path / "other"), entries, compression)
    assert again.digest == layer.digest  # the same bytes every time, thread or not


def test_a_compressor_failing_in_its_thread_leaves_no_blob(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from portside.store import layers

    calls = []

    def failing(self: object, data: bytes) -> bytes:
        calls.append(len(data))
        if len(calls) > 1:
            raise OSError("no space left on device")
        return data

    monkeypatch.setattr(layers._Compressor, "compress", failing)
    content = ContentStore(tmp_path / "store")
    with pytest.raises(OSError, match="no space"):
        write_entries(content, _big_entries(), "gzip")
    assert list(content.digests()) == []
    assert list(content.ingest_dir.iterdir()) == []
