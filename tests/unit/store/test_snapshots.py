"""Layer snapshots: unpacked once per diff_id, verified, shared, and safe to prepare at once."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import pytest
from helpers.imagefactory import add_image, compress, tar_bytes

from portside.errors import BlobUnknown, DigestMismatch, UnsafeLayer
from portside.oci import mediatypes as mt
from portside.oci.model import Descriptor
from portside.store import snapshots as snapshots_module
from portside.store.images import ImageStore
from portside.store.layers import write_layer
from portside.store.rootfs import prepare_image
from portside.store.snapshots import SnapshotStore

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="unpacking layers needs root")


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def put_layer(store: ImageStore, raw: bytes, compression: str = "gzip") -> tuple[Descriptor, str]:
    blob, media_type = compress(raw, compression)
    digest = store.content.put(blob)
    return Descriptor(media_type, digest, len(blob)), sha(raw)


def leftovers(snaps: SnapshotStore) -> list[str]:
    return sorted(p.name for p in snaps.root.iterdir() if p.name.startswith("."))


def rows(store: ImageStore) -> list[tuple[str, int]]:
    return [(r[0], r[1]) for r in store.db.execute("SELECT diff_id, size FROM snapshots")]


def test_prepare_unpacks_once_and_records_the_snapshot(store: ImageStore, monkeypatch: pytest.MonkeyPatch) -> None:
    desc, diff_id = put_layer(store, tar_bytes({"etc/hostname": b"box\n", "bin/tool": b"12345"}))
    path = store.snapshots.prepare(desc, diff_id)
    assert path == store.snapshots.path(diff_id)
    assert (path / "etc/hostname").read_bytes() == b"box\n"
    assert store.snapshots.exists(diff_id)
    assert store.snapshots.ids() == [diff_id]
    assert rows(store) == [(diff_id, 9)]
    assert store.snapshots.total_size() == 9
    assert leftovers(store.snapshots) == []

    def no_unpacking(*args: object, **kwargs: object) -> None:
        raise AssertionError("unpacked twice")

    monkeypatch.setattr(snapshots_module, "unpack", no_unpacking)
    assert store.snapshots.prepare(desc, diff_id) == path


@pytest.mark.parametrize("compression", ["", "gzip", "zstd"])
def test_prepare_every_compression(store: ImageStore, compression: str) -> None:
    desc, diff_id = put_layer(store, tar_bytes({"f": b"x" * 10_000}), compression)
    assert (store.snapshots.prepare(desc, diff_id) / "f").read_bytes() == b"x" * 10_000


def test_wrong_diff_id_leaves_nothing(store: ImageStore) -> None:
    desc, _ = put_layer(store, tar_bytes({"f": b"1"}))
    wrong = sha(b"something else")
    with pytest.raises(DigestMismatch, match=desc.digest):
        store.snapshots.prepare(desc, wrong)
    assert not store.snapshots.exists(wrong)
    assert list(store.snapshots.root.iterdir()) == []
    assert rows(store) == []


def test_unsafe_layer_leaves_nothing(store: ImageStore) -> None:
    raw = tar_bytes({"ok": b"1", "../../../escape": b"x"})
    desc, diff_id = put_layer(store, raw)
    with pytest.raises(UnsafeLayer, match=r"'\.\./\.\./\.\./escape'") as caught:
        store.snapshots.prepare(desc, diff_id)
    assert desc.digest in str(caught.value)
    assert list(store.snapshots.root.iterdir()) == []
    assert rows(store) == []
    assert not (store.root.parent / "escape").exists()


def test_missing_blob(store: ImageStore) -> None:
    desc = Descriptor(mt.OCI_LAYER_GZIP, sha(b"absent"), 6)
    with pytest.raises(BlobUnknown):
        store.snapshots.prepare(desc, sha(b"x"))
    assert list(store.snapshots.root.iterdir()) == []


def test_bomb_limit_from_the_environment(store: ImageStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTSIDE_MAX_LAYER_BYTES", "100K")
    desc, diff_id = put_layer(store, tar_bytes({"big": bytes(1 << 20)}))
    with pytest.raises(UnsafeLayer, match="'big'.*102400"):
        store.snapshots.prepare(desc, diff_id)
    assert list(store.snapshots.root.iterdir()) == []


def test_losing_the_race_discards_the_staging_dir(store: ImageStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process finishes the same snapshot while we unpack: we use theirs."""
    desc, diff_id = put_layer(store, tar_bytes({"f": b"ours"}))
    final = store.snapshots.root / diff_id.partition(":")[2]
    real_unpack = snapshots_module.unpack

    def unpack_and_lose(*args: object, **kwargs: object) -> object:
        result = real_unpack(*args, **kwargs)  # type: ignore[arg-type]
        (final / "fs").mkdir(parents=True)
        (final / "fs/f").write_bytes(b"theirs")
        return result

    monkeypatch.setattr(snapshots_module, "unpack", unpack_and_lose)
    path = store.snapshots.prepare(desc, diff_id)
    assert (path / "f").read_bytes() == b"theirs"
    assert leftovers(store.snapshots) == []
    assert store.snapshots.ids() == [diff_id]


PREPARE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from portside.oci.model import Descriptor
    from portside.store.images import ImageStore
    root, media_type, digest, size, diff_id, go = sys.argv[1:]
    store = ImageStore(Path(root))
    while not Path(go).exists():
        time.sleep(0.001)
    print(store.snapshots.prepare(Descriptor(media_type, digest, int(size)), diff_id))
    """
)


def test_two_processes_prepare_the_same_layer(store: ImageStore, tmp_path: Path) -> None:
    files = {f"d{i % 20}/f{i}": os.urandom(2000) for i in range(800)}
    desc, diff_id = put_layer(store, tar_bytes(files))
    go = tmp_path / "go"
    args = [sys.executable, "-c", PREPARE, str(store.root), desc.media_type, desc.digest,
            str(desc.size), diff_id, str(go)]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    time.sleep(0.5)  # both started and waiting
    go.touch()
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    paths = {out.strip() for out, _ in outputs}
    assert paths == {str(store.snapshots.path(diff_id))}
    assert leftovers(store.snapshots) == []
    assert [p.name for p in store.snapshots.root.iterdir()] == [diff_id.partition(":")[2]]
    assert rows(store) == [(diff_id, 800 * 2000)]
    fs = store.snapshots.path(diff_id)
    assert all((fs / name).read_bytes() == data for name, data in files.items())


def test_prepare_image_gives_lowerdirs_top_most_first(store: ImageStore) -> None:
    base = {"etc/os-release": b"busybox", "etc/passwd": b"root", "bin/sh": b"sh"}
    middle = {"etc/.wh.passwd": b"", "app/run": b"v1"}
    top = {"app/run": b"v2"}
    built = add_image(store, [base, middle, top], tags=("app:1",))
    paths = prepare_image(store, built.image)
    diff_ids = store.config(built.image).diff_ids
    assert paths == [store.snapshots.path(d) for d in reversed(diff_ids)]
    assert (paths[0] / "app/run").read_bytes() == b"v2"
    assert stat.S_ISCHR(os.lstat(paths[1] / "etc/passwd").st_mode)
    assert (paths[2] / "etc/passwd").read_bytes() == b"root"
    assert prepare_image(store, built.image) == paths  # idempotent


def test_prepare_image_lists_a_repeated_layer_once(store: ImageStore) -> None:
    same = {"f": b"1"}
    built = add_image(store, [same, {"g": b"2"}, same])
    paths = prepare_image(store, built.image)
    assert len(paths) == 2 and len(set(paths)) == 2
    assert (paths[0] / "f").exists() and (paths[1] / "g").exists()


def test_snapshots_are_shared_between_images(store: ImageStore) -> None:
    base = {"lib/libc.so": b"libc"}
    one = add_image(store, [base, {"a": b"1"}], tags=("one",))
    two = add_image(store, [base, {"b": b"2"}], tags=("two",))
    p1, p2 = prepare_image(store, one.image), prepare_image(store, two.image)
    assert p1[-1] == p2[-1]
    assert len(store.snapshots.ids()) == 3


def test_gc_removes_unreferenced_snapshots_only(store: ImageStore) -> None:
    base = {"lib/libc.so": b"libc"}
    keep = add_image(store, [base, {"a": b"1"}], tags=("keep",))
    gone = add_image(store, [base, {"b": b"2"}], tags=("gone",))
    kept_paths = prepare_image(store, keep.image)
    gone_top = prepare_image(store, gone.image)[0]
    store.remove("gone")
    assert not gone_top.exists()
    assert all(p.is_dir() for p in kept_paths)
    assert sorted(store.snapshots.ids()) == sorted(store.config(keep.image).diff_ids)
    assert leftovers(store.snapshots) == []


def test_snapshot_without_its_row_is_recorded(store: ImageStore) -> None:
    """A crash between the rename and the insert: the next prepare adds the row."""
    desc, diff_id = put_layer(store, tar_bytes({"f": b"12345", "g": b"1"}))
    store.snapshots.prepare(desc, diff_id)
    store.db.execute("DELETE FROM snapshots")
    store.snapshots.prepare(desc, diff_id)
    assert rows(store) == [(diff_id, 6)]


def test_stale_staging_dirs_are_cleaned(store: ImageStore) -> None:
    snaps = store.snapshots
    old = snaps.root / ".staging-crashed"
    (old / "fs/etc").mkdir(parents=True)
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    fresh = snaps.root / ".staging-running"
    fresh.mkdir()
    desc, diff_id = put_layer(store, tar_bytes({"f": b"1"}))
    snaps.prepare(desc, diff_id)
    assert leftovers(snaps) == [".staging-running"]


def test_remove_returns_the_size(store: ImageStore) -> None:
    desc, diff_id = put_layer(store, tar_bytes({"f": b"12345"}))
    path = store.snapshots.prepare(desc, diff_id)
    assert store.snapshots.remove(diff_id) == 5
    assert not path.exists() and store.snapshots.ids() == []
    assert leftovers(store.snapshots) == []
    assert store.snapshots.remove(diff_id) == 0


def test_a_committed_layer_comes_back_as_it_was(store: ImageStore, tmp_path: Path) -> None:
    """The layer writer turns overlay whiteouts into OCI ones; unpacking turns them back."""
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc/new.conf").write_bytes(b"conf")
    os.mknod(upper / "etc/old.conf", stat.S_IFCHR, os.makedev(0, 0))
    (upper / "var/cache").mkdir(parents=True)
    os.setxattr(upper / "var/cache", "trusted.overlay.opaque", b"y")
    os.symlink("/etc/new.conf", upper / "link")
    result = write_layer(store.content, upper, compression="zstd")
    fs = store.snapshots.prepare(Descriptor(result.media_type, result.digest, result.size),
                                 result.diff_id)
    assert (fs / "etc/new.conf").read_bytes() == b"conf"
    assert os.lstat(fs / "etc/old.conf").st_rdev == os.makedev(0, 0)
    assert os.getxattr(fs / "var/cache", "trusted.overlay.opaque") == b"y"
    assert os.readlink(fs / "link") == "/etc/new.conf"


def test_raw_tar_layers_with_a_tar_media_type(store: ImageStore) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("x" * 150)
        tar.addfile(info)
    desc, diff_id = put_layer(store, buf.getvalue(), "")
    assert (store.snapshots.prepare(desc, diff_id) / ("x" * 150)).exists()
