"""Hostile and broken layers: each hazard is refused with an error naming the entry, and
neither the target nor anything outside it is changed."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path
from typing import Any

import pytest
import zstandard
from helpers.imagefactory import tar_bytes

from portside.errors import PortsideError, UnsafeLayer
from portside.oci import mediatypes as mt
from portside.store.unpack import CorruptLayer, LayerError, UnpackPolicy, unpack

from .test_unpack import info, layer

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="unpacking layers needs root")


def state(top: Path) -> dict[str, tuple[Any, ...]]:
    """Everything under `top` (not `top` itself, whose mtime the target's creation and
    removal change): kind, mode, owner, times, content, link target, xattrs."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirs, files in os.walk(top):
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            extra: Any = None
            if stat.S_ISREG(st.st_mode):
                extra = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(path)
            xattrs = () if stat.S_ISLNK(st.st_mode) else tuple(sorted(os.listxattr(path)))
            out[os.path.relpath(path, top)] = (st.st_mode, st.st_uid, st.st_nlink, st.st_mtime_ns,
                                               extra, xattrs)
    return out


class Place:
    """A tmp dir with a would-be victim outside the target, and the target's path."""

    def __init__(self, top: Path) -> None:
        self.top = top
        self.outside = top / "outside"
        self.outside.mkdir()
        (self.outside / "sentinel").write_bytes(b"precious")
        self.target = top / "target"

    def refuse(
        self,
        data: bytes,
        entry: str | None,
        error: type[PortsideError] = UnsafeLayer,
        match: str | None = None,
        media_type: str = mt.OCI_LAYER,
        **policy: Any,
    ) -> PortsideError:
        before = state(self.top)
        with pytest.raises(error, match=match) as caught:
            unpack(io.BytesIO(data), self.target, media_type=media_type, layer="sha256:bad",
                   policy=UnpackPolicy(**policy))
        exc = caught.value
        assert "sha256:bad" in str(exc)
        if entry is not None:
            assert getattr(exc, "entry", None) == entry
            assert repr(entry) in str(exc), str(exc)
        assert "\n" not in str(exc)
        assert not os.path.lexists(self.target), "the target must be removed"
        assert state(self.top) == before, "nothing outside the target may change"
        return exc


@pytest.fixture
def place(tmp_path: Path) -> Place:
    return Place(tmp_path)


# -- paths --


@pytest.mark.parametrize("name", ["../outside/sentinel", "a/../../outside/x", "a/../b", ".."])
def test_dotdot_is_refused(place: Place, name: str) -> None:
    data = layer((info("ok"), b"1"), (info(name), b"evil"))
    place.refuse(data, name, match="'..'")


def test_absolute_path_is_refused(place: Place) -> None:
    name = str(place.outside / "sentinel")
    data = layer((info("ok"), b"1"), (info(name), b"evil"))
    place.refuse(data, name, match="absolute")


def test_write_through_a_planted_symlink_is_refused(place: Place) -> None:
    """An absolute symlink is a fine link, but no later entry may be written through it."""
    data = layer(
        info("escape", tarfile.SYMTYPE, linkname=str(place.outside)),
        (info("escape/sentinel"), b"pwned"),
    )
    place.refuse(data, "escape/sentinel", match="symlink")


def test_write_through_a_symlinked_parent_deep_down(place: Place) -> None:
    data = layer(
        info("a/b", tarfile.DIRTYPE),
        info("a/b/c", tarfile.SYMTYPE, linkname="/"),
        info("a/b/c/etc", tarfile.DIRTYPE),
    )
    place.refuse(data, "a/b/c/etc/", match="'a/b/c' is a symlink")


def test_directory_replaced_by_symlink_then_written_through(place: Place) -> None:
    """The open-directory cache must not keep writing into a directory that was replaced."""
    data = layer(
        info("d", tarfile.DIRTYPE),
        (info("d/one"), b"1"),
        info("d", tarfile.SYMTYPE, linkname=str(place.outside)),
        (info("d/sentinel"), b"pwned"),
    )
    place.refuse(data, "d/sentinel", match="symlink")


def test_whiteout_through_a_symlink(place: Place) -> None:
    data = layer(
        info("l", tarfile.SYMTYPE, linkname=str(place.outside)),
        (info("l/.wh.sentinel"), b""),
    )
    place.refuse(data, "l/.wh.sentinel", match="symlink")


def test_opaque_marker_through_a_symlink(place: Place) -> None:
    data = layer(
        info("l", tarfile.SYMTYPE, linkname=str(place.outside)),
        (info("l/.wh..wh..opq"), b""),
    )
    place.refuse(data, "l/.wh..wh..opq", match="symlink")


def test_path_too_long(place: Place) -> None:
    name = "a/" * 40 + "f"
    place.refuse(layer((info(name), b"1")), name, match="longer than 64", max_path=64)


def test_whiteout_used_as_a_directory(place: Place) -> None:
    place.refuse(layer((info("x/.wh.y/z"), b"1")), "x/.wh.y/z", match="whiteout")


def test_root_replaced_by_a_symlink(place: Place) -> None:
    place.refuse(layer(info("./", tarfile.SYMTYPE, linkname="/")), "./", match="root")


# -- links --


@pytest.mark.parametrize("target", ["../../outside", "../../../../../../etc/passwd", "../.."])
def test_relative_symlink_leading_outside(place: Place, target: str) -> None:
    data = layer(info("a/link", tarfile.SYMTYPE, linkname=target))
    place.refuse(data, "a/link", match="leads outside")


def test_relative_symlinks_that_stay_inside_are_fine(tmp_path: Path) -> None:
    data = layer(
        info("usr/lib/x/link", tarfile.SYMTYPE, linkname="../../../etc/x"),
        info("bin", tarfile.SYMTYPE, linkname="usr/bin"),
        info("dot", tarfile.SYMTYPE, linkname="./a/../b"),
    )
    unpack(io.BytesIO(data), tmp_path / "fs")
    assert os.readlink(tmp_path / "fs/usr/lib/x/link") == "../../../etc/x"


@pytest.mark.parametrize(
    "linkname, match",
    [
        ("../outside/sentinel", "'..'"),
        ("{outside}/sentinel", "absolute"),
        ("missing", "not a file extracted earlier"),
        ("escape/sentinel", "not a file extracted earlier"),  # through the planted symlink
        ("dir", "not a file extracted earlier"),
    ],
)
def test_hardlink_outside_the_layer(place: Place, linkname: str, match: str) -> None:
    linkname = linkname.format(outside=place.outside)
    data = layer(
        info("escape", tarfile.SYMTYPE, linkname=str(place.outside)),
        info("dir", tarfile.DIRTYPE),
        info("evil", tarfile.LNKTYPE, linkname=linkname),
    )
    place.refuse(data, "evil", match=match)


def test_hardlink_to_a_file_later_hidden_behind_a_symlink(place: Place) -> None:
    data = layer(
        info("d", tarfile.DIRTYPE),
        (info("d/f"), b"1"),
        info("d", tarfile.SYMTYPE, linkname=str(place.outside)),
        info("h", tarfile.LNKTYPE, linkname="d/f"),
    )
    place.refuse(data, "h", match="'d' is a symlink")


# -- devices and xattrs --


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE])
@pytest.mark.parametrize("bits", [0o4000, 0o2000])
def test_setuid_device_is_refused(place: Place, kind: bytes, bits: int) -> None:
    data = layer(info("dev/mem", kind, devmajor=1, devminor=1, mode=0o666 | bits))
    place.refuse(data, "dev/mem", match="setuid/setgid")


def test_devices_refused_by_policy(place: Place) -> None:
    data = layer((info("ok"), b"1"), info("dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0))
    place.refuse(data, "dev/sda", match="policy", allow_devices=False)


def test_policy_without_devices_still_writes_whiteouts_and_fifos(tmp_path: Path) -> None:
    data = layer((info(".wh.gone"), b""), info("fifo", tarfile.FIFOTYPE))
    unpack(io.BytesIO(data), tmp_path / "fs", policy=UnpackPolicy(allow_devices=False))
    assert stat.S_ISCHR(os.lstat(tmp_path / "fs/gone").st_mode)


@pytest.mark.parametrize("xattr", ["trusted.overlay.redirect", "trusted.overlay.opaque", "user.overlay.metacopy"])
def test_overlay_xattrs_from_the_layer_are_refused(place: Place, xattr: str) -> None:
    data = layer((info("f", pax_headers={f"SCHILY.xattr.{xattr}": "/etc"}), b"1"))
    place.refuse(data, "f", match="overlayfs xattr")


# -- bombs --


def test_uncompressed_size_limit(place: Place) -> None:
    data = layer((info("small"), b"1"), (info("big"), bytes(1 << 20)))
    exc = place.refuse(data, "big", match="larger than 100000 bytes", max_bytes=100_000)
    assert "limit" in str(exc)


def test_gzip_bomb(place: Place) -> None:
    raw = layer((info("zeros"), bytes(64 << 20)))
    bomb = gzip.compress(raw, compresslevel=9)
    assert len(bomb) < 200_000
    place.refuse(bomb, "zeros", match="larger than", media_type=mt.OCI_LAYER_GZIP, max_bytes=8 << 20)


def test_zstd_bomb(place: Place) -> None:
    bomb = zstandard.ZstdCompressor(level=19).compress(layer((info("zeros"), bytes(64 << 20))))
    place.refuse(bomb, "zeros", match="larger than", media_type=mt.OCI_LAYER_ZSTD, max_bytes=8 << 20)


def test_entry_count_limit(place: Place) -> None:
    data = tar_bytes({f"f{i}": b"" for i in range(20)})
    place.refuse(data, "f10", match="more than 10 entries", max_entries=10)


def test_huge_extended_header(place: Place) -> None:
    data = layer((info("f", pax_headers={"comment": "x" * (2 << 20)}), b"1"))
    place.refuse(data, None, match="extended header")


def test_bomb_limit_from_the_environment(place: Place, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTSIDE_MAX_LAYER_BYTES", "64K")
    data = layer((info("big"), bytes(100_000)))
    before = state(place.top)
    with pytest.raises(UnsafeLayer, match="65536"):
        unpack(io.BytesIO(data), place.target)
    assert state(place.top) == before


# -- broken archives --


def good() -> bytes:
    return layer(info("d", tarfile.DIRTYPE), (info("d/f"), os.urandom(5000)), (info("g"), b"2"))


def test_truncated_in_file_data(place: Place) -> None:
    data = good()
    place.refuse(data[:2000], "d/f", error=CorruptLayer, match="truncated")


def test_truncated_in_a_header(place: Place) -> None:
    data = good()
    cut = data.index(b"g\0") + 200  # inside g's header
    place.refuse(data[:cut], None, error=CorruptLayer, match="truncated")


def test_missing_end_of_archive_marker(place: Place) -> None:
    data = good()
    end = len(data.rstrip(b"\0"))
    end += -end % 512
    place.refuse(data[:end], None, error=CorruptLayer, match="end-of-archive")


def test_truncated_gzip(place: Place) -> None:
    blob = gzip.compress(good())
    place.refuse(blob[:-20], None, error=CorruptLayer, match="truncated", media_type=mt.OCI_LAYER_GZIP)


def test_truncated_zstd(place: Place) -> None:
    blob = zstandard.ZstdCompressor().compress(good())
    place.refuse(blob[: len(blob) // 2], None, error=CorruptLayer, match="truncated",
                 media_type=mt.OCI_LAYER_ZSTD)


def test_corrupt_gzip(place: Place) -> None:
    blob = bytearray(gzip.compress(good()))
    blob[len(blob) // 2] ^= 0xFF
    place.refuse(bytes(blob), None, error=CorruptLayer, media_type=mt.OCI_LAYER_GZIP)


def test_gzip_trailing_garbage(place: Place) -> None:
    blob = gzip.compress(good()) + b"garbage"
    place.refuse(blob, None, error=CorruptLayer, match="gzip", media_type=mt.OCI_LAYER_GZIP)


def test_bad_header_checksum(place: Place) -> None:
    data = bytearray(good())
    offset = data.index(b"g\0")
    data[offset + 100] ^= 0x01  # a mode digit of g's header
    place.refuse(bytes(data), "g", error=CorruptLayer, match="checksum")


@pytest.mark.parametrize("blob", [b"", b"not a tar at all" * 100, os.urandom(3000)])
def test_not_a_tar(place: Place, blob: bytes) -> None:
    place.refuse(blob, None, error=CorruptLayer)


def test_sparse_files_are_unsupported(place: Place) -> None:
    data = layer((info("s", pax_headers={"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}), b"1"))
    place.refuse(data, "s", error=CorruptLayer, match="sparse")


def test_unknown_entry_type(place: Place) -> None:
    place.refuse(layer(info("v", b"V")), "v", error=CorruptLayer, match="unsupported")


def test_layer_errors_are_portside_errors() -> None:
    assert issubclass(CorruptLayer, LayerError) and issubclass(LayerError, PortsideError)


# -- an existing target is left as it was --


def test_existing_empty_target_is_restored(place: Place) -> None:
    place.target.mkdir(mode=0o700)
    os.utime(place.target, ns=(1, 2))
    before = state(place.top)
    data = layer(
        info("./", tarfile.DIRTYPE, mode=0o777, uid=99),
        (info(".wh..wh..opq"), b""),
        (info("f"), b"1"),
        (info("../evil"), b"x"),
    )
    with pytest.raises(UnsafeLayer):
        unpack(io.BytesIO(data), place.target)
    assert state(place.top) == before
