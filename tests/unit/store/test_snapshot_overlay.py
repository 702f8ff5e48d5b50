"""Prepared snapshots work as overlayfs lower directories: the kernel honours the whiteouts
and opaque directories the unpacker wrote."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from helpers.imagefactory import add_image

from portside.store.images import ImageStore
from portside.store.rootfs import prepare_image

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting overlayfs needs root")


def test_overlay_of_prepared_snapshots(store: ImageStore, tmp_path: Path) -> None:
    lower = {
        "etc/passwd": b"root:x:0:0\n",
        "etc/keep": b"kept",
        "var/cache/old1": b"1",
        "var/cache/sub/old2": b"2",
        "opt/tool": b"tool",
    }
    upper = {
        "etc/.wh.passwd": b"",
        "var/cache/.wh..wh..opq": b"",
        "var/cache/fresh": b"new",
        ".wh.opt": b"",
    }
    built = add_image(store, [lower, upper])
    lowerdirs = prepare_image(store, built.image)
    assert len(lowerdirs) == 2
    merged = tmp_path / "merged"
    merged.mkdir()
    options = "lowerdir=" + ":".join(str(p) for p in lowerdirs)
    mounted = subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", options, str(merged)],
        capture_output=True, text=True,
    )
    if mounted.returncode != 0 and "unknown filesystem type" in mounted.stderr:
        pytest.skip("the kernel has no overlayfs")
    assert mounted.returncode == 0, mounted.stderr
    try:
        assert not (merged / "etc/passwd").exists()  # whited out
        assert (merged / "etc/keep").read_bytes() == b"kept"  # its sibling stays
        assert sorted(os.listdir(merged / "etc")) == ["keep"]
        assert sorted(os.listdir(merged / "var/cache")) == ["fresh"]  # opaque
        assert (merged / "var/cache/fresh").read_bytes() == b"new"
        assert not (merged / "opt").exists()  # a whole directory whited out
        assert sorted(os.listdir(merged)) == ["etc", "var"]
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    assert os.listdir(merged) == []
