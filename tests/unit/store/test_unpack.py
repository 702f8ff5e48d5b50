"""The layer unpacker: what a layer says ends up on disk, with whiteouts in overlayfs form."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard
from helpers.imagefactory import compress, tar_bytes

from portside.errors import InvalidArgument
from portside.oci import mediatypes as mt
from portside.store.tarstream import CHUNK
from portside.store.unpack import CorruptLayer, UnpackPolicy, parse_size, unpack

MTIME = 1_600_000_000
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="unpacking layers needs root")


def info(name: str, kind: bytes = tarfile.REGTYPE, **fields: object) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mtime = MTIME
    ti.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    for key, value in fields.items():
        setattr(ti, key, value)
    return ti


def layer(*items: tarfile.TarInfo | tuple[tarfile.TarInfo, bytes], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """A tar of TarInfos (header-only) and (TarInfo, data) pairs, in order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for item in items:
            if isinstance(item, tuple):
                ti, data = item
                ti.size = len(data)
                tar.addfile(ti, io.BytesIO(data))
            else:
                tar.addfile(item)
    return buf.getvalue()


def run(data: bytes, target: Path, media_type: str | None = mt.OCI_LAYER, **policy: object):
    return unpack(io.BytesIO(data), target, media_type=media_type, layer="sha256:test",
                  policy=UnpackPolicy(**policy))  # type: ignore[arg-type]


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_files_dirs_links_and_the_diff_id(tmp_path: Path) -> None:
    data = layer(
        info("etc", tarfile.DIRTYPE, mode=0o750),
        (info("etc/hostname", mode=0o640, uid=1000, gid=1001), b"box\n"),
        info("etc/motd", tarfile.SYMTYPE, linkname="hostname", uid=7, gid=8),
        info("etc/hard", tarfile.LNKTYPE, linkname="etc/hostname"),
        info("bin/sh", tarfile.SYMTYPE, linkname="/bin/busybox"),
        (info("empty"), b""),
    )
    target = tmp_path / "fs"
    result = run(data, target)
    assert result.diff_id == sha(data)
    assert result.tar_size == len(data)
    assert result.size == 4
    assert (target / "etc/hostname").read_bytes() == b"box\n"
    st = os.lstat(target / "etc/hostname")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime) == (0o640, 1000, 1001, MTIME)
    assert st.st_nlink == 2
    assert os.lstat(target / "etc/hard").st_ino == st.st_ino
    assert os.readlink(target / "etc/motd") == "hostname"
    link = os.lstat(target / "etc/motd")
    assert (link.st_uid, link.st_gid, link.st_mtime) == (7, 8, MTIME)
    assert os.readlink(target / "bin/sh") == "/bin/busybox"  # absolute: fine as a link
    assert stat.S_IMODE(os.stat(target / "bin").st_mode) == 0o755  # implicit parent
    etc = os.stat(target / "etc")
    assert stat.S_IMODE(etc.st_mode) == 0o750
    assert etc.st_mtime == MTIME  # fixed up after its children were created
    assert (target / "empty").read_bytes() == b""


def test_modes_with_setuid_setgid_and_sticky(tmp_path: Path) -> None:
    data = layer(
        (info("su", mode=0o4755, uid=0), b"x"),
        (info("sg", mode=0o2711, uid=5, gid=6), b"x"),
        info("tmp", tarfile.DIRTYPE, mode=0o1777),
        info("shared", tarfile.DIRTYPE, mode=0o2775, gid=50),
        (info("shared/f", mode=0o600), b"y"),
    )
    target = tmp_path / "fs"
    run(data, target)

    def mode(name: str) -> int:
        return stat.S_IMODE(os.lstat(target / name).st_mode)

    assert mode("su") == 0o4755
    assert mode("sg") == 0o2711
    assert os.stat(target / "sg").st_gid == 6  # chown did not drop the bits: chmod came after
    assert mode("tmp") == 0o1777
    assert mode("shared") == 0o2775
    assert mode("shared/f") == 0o600


def test_owners_are_numeric_and_can_be_left_alone(tmp_path: Path) -> None:
    data = layer((info("f", uid=4242, gid=4343, uname="nobody-here", gname="x"), b"1"))
    run(data, tmp_path / "a")
    st = os.stat(tmp_path / "a/f")
    assert (st.st_uid, st.st_gid) == (4242, 4343)
    run(data, tmp_path / "b", preserve_owner=False)
    st = os.stat(tmp_path / "b/f")
    assert (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid())


def test_devices_fifos_and_their_modes(tmp_path: Path) -> None:
    data = layer(
        info("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666),
        info("dev/loop9", tarfile.BLKTYPE, devmajor=7, devminor=9, mode=0o660, gid=6),
        info("run/pipe", tarfile.FIFOTYPE, mode=0o620),
    )
    target = tmp_path / "fs"
    run(data, target)
    null = os.lstat(target / "dev/null")
    assert stat.S_ISCHR(null.st_mode) and os.major(null.st_rdev) == 1 and os.minor(null.st_rdev) == 3
    assert stat.S_IMODE(null.st_mode) == 0o666  # not reduced by the umask
    loop = os.lstat(target / "dev/loop9")
    assert stat.S_ISBLK(loop.st_mode) and (os.major(loop.st_rdev), os.minor(loop.st_rdev)) == (7, 9)
    assert loop.st_gid == 6 and loop.st_mtime == MTIME
    pipe = os.lstat(target / "run/pipe")
    assert stat.S_ISFIFO(pipe.st_mode) and stat.S_IMODE(pipe.st_mode) == 0o620


def test_xattrs_from_pax_headers(tmp_path: Path) -> None:
    f = info("f", pax_headers={"SCHILY.xattr.user.comment": "hello", "SCHILY.xattr.trusted.k": "v"})
    d = info("d", tarfile.DIRTYPE, pax_headers={"SCHILY.xattr.user.dir": "yes"})
    lib = info("g", pax_headers={"LIBARCHIVE.xattr.user.b64": "AAEC"})  # base64 of 00 01 02
    target = tmp_path / "fs"
    run(layer((f, b"1"), d, (lib, b"2")), target)
    assert os.getxattr(target / "f", "user.comment") == b"hello"
    assert os.getxattr(target / "f", "trusted.k") == b"v"
    assert os.getxattr(target / "d", "user.dir") == b"yes"
    assert os.getxattr(target / "g", "user.b64") == b"\x00\x01\x02"


def test_file_capabilities_survive(tmp_path: Path) -> None:
    """security.capability is dropped by chown and by writes: it must be set after both."""
    if not shutil.which("setcap"):
        pytest.skip("setcap (libcap2-bin) is not installed")
    src = tmp_path / "src"
    src.mkdir()
    ping = src / "ping"
    ping.write_bytes(b"\x7fELF")
    subprocess.run(["setcap", "cap_net_raw+ep", str(ping)], check=True, capture_output=True)
    raw = subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "-C", str(src), "-cf", "-", "ping"],
                         check=True, capture_output=True).stdout
    target = tmp_path / "fs"
    run(raw, target)
    assert os.getxattr(src / "ping", "security.capability") == os.getxattr(
        target / "ping", "security.capability"
    )


def test_whiteouts_become_overlay_devices_and_opaque_dirs(tmp_path: Path) -> None:
    data = layer(
        info("etc", tarfile.DIRTYPE),
        (info("etc/.wh.passwd"), b""),
        info("var", tarfile.DIRTYPE),
        info("var/cache", tarfile.DIRTYPE),
        (info("var/cache/.wh..wh..opq"), b""),
        (info("var/cache/new"), b"n"),
        (info(".wh..wh..plnk"), b""),  # AUFS bookkeeping: ignored
    )
    target = tmp_path / "fs"
    run(data, target)
    wh = os.lstat(target / "etc/passwd")
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == os.makedev(0, 0)
    assert not (target / "etc/.wh.passwd").exists()
    assert os.getxattr(target / "var/cache", "trusted.overlay.opaque") == b"y"
    assert (target / "var/cache/new").read_bytes() == b"n"
    assert not os.path.lexists(target / "var/cache/.wh..wh..opq")
    assert sorted(os.listdir(target)) == ["etc", "var"]


def test_whiteout_and_same_layer_entry(tmp_path: Path) -> None:
    """Whiteouts hide lower layers only (layer.md): what this layer puts there stays, and a
    directory recreated in the same layer hides the lower directory's content (opaque)."""
    data = layer(
        (info(".wh.app"), b""),
        info("app", tarfile.DIRTYPE),
        (info("app/new"), b"1"),
        (info("conf"), b"mine"),
        (info(".wh.conf"), b""),  # after the file: keeps it
        info("data", tarfile.DIRTYPE),
        (info(".wh.data"), b""),  # after the directory: makes it opaque
    )
    target = tmp_path / "fs"
    run(data, target)
    assert os.getxattr(target / "app", "trusted.overlay.opaque") == b"y"
    assert (target / "app/new").read_bytes() == b"1"
    assert (target / "conf").read_bytes() == b"mine"
    assert os.getxattr(target / "data", "trusted.overlay.opaque") == b"y"


@pytest.mark.parametrize("compression", ["", "gzip", "zstd"])
def test_compressions(tmp_path: Path, compression: str) -> None:
    raw = tar_bytes({"a/b": b"x" * 100_000, "c": b"y"})
    blob, media_type = compress(raw, compression)
    result = run(blob, tmp_path / "fs", media_type=media_type)
    assert result.diff_id == sha(raw)
    assert result.compression == compression
    assert (tmp_path / "fs/a/b").read_bytes() == b"x" * 100_000


@pytest.mark.parametrize("compression", ["", "gzip", "zstd"])
def test_compression_is_sniffed_when_the_media_type_is_wrong_or_missing(
    tmp_path: Path, compression: str
) -> None:
    raw = tar_bytes({"f": b"data"})
    blob, _ = compress(raw, compression)
    for i, media_type in enumerate([None, mt.DOCKER_LAYER_GZIP, mt.OCI_LAYER, "application/x-odd"]):
        result = run(blob, tmp_path / f"fs{i}", media_type=media_type)
        assert result.diff_id == sha(raw)
        assert (tmp_path / f"fs{i}/f").read_bytes() == b"data"


def test_gzip_with_several_members_and_zero_padding(tmp_path: Path) -> None:
    raw = tar_bytes({"f": os.urandom(300_000)})
    blob = gzip.compress(raw[:100_000]) + gzip.compress(raw[100_000:]) + bytes(700)
    result = run(blob, tmp_path / "fs", media_type=mt.OCI_LAYER_GZIP)
    assert result.diff_id == sha(raw)


def test_zstd_with_several_frames(tmp_path: Path) -> None:
    raw = tar_bytes({"f": os.urandom(300_000)})
    cctx = zstandard.ZstdCompressor()
    blob = cctx.compress(raw[:1000]) + cctx.compress(raw[1000:])
    assert run(blob, tmp_path / "fs", media_type=mt.OCI_LAYER_ZSTD).diff_id == sha(raw)


def test_large_file_streams_in_chunks(tmp_path: Path) -> None:
    payload = os.urandom(CHUNK // 3) * 10  # several chunks, not chunk-aligned
    raw = layer((info("big"), payload), (info("after"), b"z"))
    blob, media_type = compress(raw, "gzip")
    result = run(blob, tmp_path / "fs", media_type=media_type)
    assert (tmp_path / "fs/big").read_bytes() == payload
    assert (tmp_path / "fs/after").read_bytes() == b"z"
    assert result.size == len(payload) + 1


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
def test_long_names_in_every_format(tmp_path: Path, fmt: int) -> None:
    deep = "/".join(["d" * 60] * 3) + "/file"  # > 100 bytes: GNU longname, pax path, ustar prefix
    target = "/".join(["t" * 60] * 2)
    items: list[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]] = [(info(deep), b"deep")]
    if fmt != tarfile.USTAR_FORMAT:  # ustar cannot hold a long link target
        items.append(info("link", tarfile.SYMTYPE, linkname=target))
    run(layer(*items, fmt=fmt), tmp_path / "fs")
    assert (tmp_path / "fs" / deep).read_bytes() == b"deep"
    if fmt != tarfile.USTAR_FORMAT:
        assert os.readlink(tmp_path / "fs/link") == target


def test_pax_times_and_big_ids(tmp_path: Path) -> None:
    ti = info("f", uid=3_000_000_000, gid=2_000_000, pax_headers={"mtime": "1600000000.25", "atime": "1500000000"})
    run(layer((ti, b"1")), tmp_path / "fs")
    st = os.stat(tmp_path / "fs/f")
    assert st.st_mtime_ns == 1_600_000_000_250_000_000
    assert st.st_atime_ns == 1_500_000_000_000_000_000
    assert (st.st_uid, st.st_gid) == (3_000_000_000, 2_000_000)


def test_later_entries_replace_earlier_ones(tmp_path: Path) -> None:
    """layer.md, "Changeset over existing files": a directory over a directory keeps it and
    takes the new attributes; anything else replaces what was there."""
    data = layer(
        (info("f"), b"old"),
        (info("f"), b"new"),
        info("d", tarfile.DIRTYPE, mode=0o700),
        (info("d/keep"), b"k"),
        info("d", tarfile.DIRTYPE, mode=0o711),
        info("x", tarfile.DIRTYPE),
        (info("x/inner"), b"i"),
        (info("x"), b"now a file"),
        (info("y"), b"file"),
        info("y", tarfile.DIRTYPE),
        (info("y/z"), b"z"),
        info("s", tarfile.SYMTYPE, linkname="f"),
        (info("s"), b"plain"),
    )
    target = tmp_path / "fs"
    run(data, target)
    assert (target / "f").read_bytes() == b"new"
    assert (target / "d/keep").read_bytes() == b"k"
    assert stat.S_IMODE(os.stat(target / "d").st_mode) == 0o711
    assert (target / "x").read_bytes() == b"now a file"
    assert (target / "y/z").read_bytes() == b"z"
    assert not os.path.islink(target / "s") and (target / "s").read_bytes() == b"plain"
    assert (target / "f").read_bytes() == b"new"  # writing "s" did not go through the old link


def test_dot_slash_names_and_the_root_entry(tmp_path: Path) -> None:
    data = layer(
        info("./", tarfile.DIRTYPE, mode=0o711),
        info("./etc/", tarfile.DIRTYPE),
        (info("./etc//x"), b"1"),
        (info("etc/./y"), b"2"),
    )
    target = tmp_path / "fs"
    run(data, target)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o711
    assert os.stat(target).st_mtime == MTIME
    assert sorted(os.listdir(target / "etc")) == ["x", "y"]


def test_empty_layer_and_trailing_padding(tmp_path: Path) -> None:
    result = run(bytes(1024), tmp_path / "a")
    assert result.entries == 0 and os.listdir(tmp_path / "a") == []
    data = tar_bytes({"f": b"1"}) + bytes(10240)  # tar(1) pads to its record size
    assert run(data, tmp_path / "b").diff_id == sha(data)


def test_matches_gnu_tar(tmp_path: Path) -> None:
    """The same tree as `tar -x` makes of the same layer (made by GNU tar itself)."""
    src = tmp_path / "src"
    (src / "usr/bin").mkdir(parents=True)
    (src / "usr/bin/tool").write_bytes(os.urandom(5000))
    os.chmod(src / "usr/bin/tool", 0o4755)
    os.link(src / "usr/bin/tool", src / "usr/bin/tool2")
    os.symlink("usr/bin", src / "bin")
    os.mkfifo(src / "fifo")
    os.setxattr(src / "usr/bin/tool", "user.k", b"v")
    os.chown(src / "usr", 12, 34)
    raw = subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "-C", str(src), "-cf", "-", "."],
                         check=True, capture_output=True).stdout
    ours, ref = tmp_path / "ours", tmp_path / "ref"
    ref.mkdir()
    run(raw, ours)
    subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "-xpf", "-", "-C", str(ref)],
                   input=raw, check=True)
    assert _tree(ours) == _tree(ref)


def _tree(root: Path) -> dict[str, tuple[object, ...]]:
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            extra: object = None
            if stat.S_ISLNK(st.st_mode):
                extra = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                extra = (Path(path).read_bytes(), st.st_nlink, sorted(os.listxattr(path)))
            out[os.path.relpath(path, root)] = (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, extra)
    return out


def test_target_must_be_missing_or_empty(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full/x").write_bytes(b"")
    with pytest.raises(InvalidArgument, match="not empty"):
        run(tar_bytes({"f": b"1"}), tmp_path / "full")
    (tmp_path / "empty").mkdir()
    run(tar_bytes({"f": b"1"}), tmp_path / "empty")
    assert (tmp_path / "empty/f").read_bytes() == b"1"


def test_unpack_from_a_path(tmp_path: Path) -> None:
    raw = tar_bytes({"f": b"1"})
    (tmp_path / "layer.tar").write_bytes(raw)
    assert unpack(tmp_path / "layer.tar", tmp_path / "fs").diff_id == sha(raw)


def test_policy_from_environment() -> None:
    policy = UnpackPolicy.from_env({"PORTSIDE_MAX_LAYER_BYTES": "2G", "PORTSIDE_MAX_LAYER_ENTRIES": "10"})
    assert policy.max_bytes == 2 << 30 and policy.max_entries == 10
    assert UnpackPolicy.from_env({}).max_bytes == 64 << 30
    assert parse_size("512MiB") == 512 << 20 and parse_size("1000") == 1000
    with pytest.raises(InvalidArgument, match="PORTSIDE_MAX_LAYER_BYTES"):
        UnpackPolicy.from_env({"PORTSIDE_MAX_LAYER_BYTES": "lots"})


def test_corrupt_layer_is_a_portside_error() -> None:
    from portside.errors import PortsideError

    assert issubclass(CorruptLayer, PortsideError)
