"""The read-only view of a stage's layers: whiteouts, opaque directories, symlinks, export."""

from __future__ import annotations

import tarfile
from pathlib import Path

from helpers.imagefactory import add_image

from portside.build.stagefs import LayerRef, StageFS
from portside.store.images import ImageStore


def info(
    name: str, kind: bytes = tarfile.DIRTYPE, link: str = "", mode: int = 0o755
) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mode = kind, link, mode
    return ti


def stage(store: ImageStore) -> StageFS:
    built = add_image(
        store,
        [
            {
                "a": info("a"),
                "a/x": b"x1",
                "a/y": b"y1",
                "b/old": b"old",
                "tmp": info("tmp", mode=0o1777),
                "usr/lib/libz.so": b"lib",
                "lib": info("lib", tarfile.SYMTYPE, "usr/lib"),
                "etc/passwd": b"root:x:0:0::/:/bin/sh\n",
            },
            {
                "a/.wh.x": b"",
                "b/.wh..wh..opq": b"",
                "b/new": b"new",
                "a/z": b"z2",
                "abs": info("abs", tarfile.SYMTYPE, "/usr/lib/libz.so"),
            },
        ],
    )
    manifest = store.manifest(built.image)
    diff_ids = store.config(built.image).diff_ids
    return StageFS(
        store.content,
        [
            LayerRef(d.digest, d.size, i, d.media_type)
            for d, i in zip(manifest.layers, diff_ids, strict=True)
        ],
    )


def test_lookups_apply_whiteouts_and_links(store: ImageStore) -> None:
    fs = stage(store)
    assert fs.lookup("/a/x") is None  # whited out
    assert fs.lookup("/a/y") is not None and fs.lookup("/a/z") is not None
    assert fs.lookup("/b/old") is None and fs.lookup("/b/new") is not None  # opaque dir
    tmp = fs.lookup("/tmp")
    assert tmp is not None and tmp.is_dir and tmp.mode == 0o1777
    assert fs.lookup("/usr") is not None and fs.lookup("/usr").is_dir  # implicit parent
    assert fs.resolve("/lib/libz.so") == "usr/lib/libz.so"
    assert fs.lookup("/lib").is_dir  # through the link
    assert fs.resolve("/abs") == "usr/lib/libz.so"
    assert fs.lookup("/nope") is None
    assert fs.read_file("/etc/passwd") == b"root:x:0:0::/:/bin/sh\n"
    assert fs.read_file("/a/x") is None


def test_export_materialises_the_merged_tree(store: ImageStore, tmp_path: Path) -> None:
    fs = stage(store)
    out = tmp_path / "out"
    fs.export("/", out)
    assert sorted(p.name for p in (out / "a").iterdir()) == ["y", "z"]
    assert sorted(p.name for p in (out / "b").iterdir()) == ["new"]
    assert (out / "lib").is_symlink() and (out / "lib" / "libz.so").read_bytes() == b"lib"
    part = tmp_path / "part"
    fs.export("/lib", part)  # a link named as the source is followed
    assert (part / "libz.so").read_bytes() == b"lib"
