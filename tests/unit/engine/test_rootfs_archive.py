"""The in-root path walk and the cp tar helpers on a plain directory playing a container's
root: links and `..` stay inside, archives that climb out are refused."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from portside.engine import archive, rootfs
from portside.engine.manage import merged_host_config
from portside.errors import InvalidArgument, NotFound


@pytest.fixture
def ctr(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    top = tmp_path / "root"
    (top / "etc").mkdir(parents=True)
    (top / "etc" / "passwd").write_text("container\n")
    (top / "data").mkdir()
    os.symlink("/", top / "rootlink")
    os.symlink("/etc", top / "etclink")
    os.symlink("../../../../..", top / "data" / "up")
    os.symlink(str(tmp_path / "host"), top / "hostlink")
    os.symlink("loop", top / "loop")
    (tmp_path / "host").mkdir()
    (tmp_path / "host" / "secret").write_text("host\n")
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    yield top, fd
    os.close(fd)


def _read(fd: int, path: str) -> str:
    r = rootfs.resolve(fd, path, "web", follow_last=True)
    try:
        f = os.open(r.name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=r.parent)
        with os.fdopen(f) as fh:
            return fh.read()
    finally:
        r.close(fd)


@pytest.mark.parametrize("path", ["/etc/passwd", "../../../etc/passwd", "/rootlink/etc/passwd",
                                  "/etclink/passwd", "/data/up/etc/passwd",
                                  "/rootlink/rootlink/../etc/./passwd"])
def test_paths_resolve_inside_the_root(ctr: tuple[Path, int], path: str) -> None:
    assert _read(ctr[1], path) == "container\n"


def test_a_link_to_a_host_path_is_looked_up_in_the_root(ctr: tuple[Path, int]) -> None:
    with pytest.raises(NotFound, match="Could not find the file /hostlink/secret in container"):
        _read(ctr[1], "/hostlink/secret")
    with pytest.raises(InvalidArgument, match="too many levels"):
        rootfs.resolve(ctr[1], "/loop/x", "web")


def test_resolved_paths_and_stat(ctr: tuple[Path, int]) -> None:
    r = rootfs.resolve(ctr[1], "/etclink", "web", follow_last=True)
    assert (r.path, r.exists) == ("/etc", True)
    r.close(ctr[1])
    doc = archive.path_stat(ctr[1], "/etclink", "web")
    assert doc["name"] == "etclink" and doc["linkTarget"] == "/etc"
    assert doc["mode"] & (1 << 27)  # Go's ModeSymlink
    assert archive.path_stat(ctr[1], "/etc", "web")["mode"] & (1 << 31)  # ModeDir
    assert archive.path_stat(ctr[1], "/", "web")["name"] == "/"


def test_tar_out_names_entries_as_docker_does(ctr: tuple[Path, int]) -> None:
    chunks: list[bytes] = []
    archive.write_path(ctr[1], "/etclink/", "web", chunks.append)
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        assert tar.getnames() == ["etclink", "etclink/passwd"]  # followed, named as asked
    chunks.clear()
    archive.write_path(ctr[1], "/etclink", "web", chunks.append)
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        assert [(m.name, m.issym(), m.linkname) for m in tar] == [("etclink", True, "/etc")]
    chunks.clear()
    archive.write_path(ctr[1], "/etc/.", "web", chunks.append)
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        assert "./passwd" in tar.getnames()


def _tar(name: str, data: bytes = b"x", link: str = "") -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        if link:
            info.type, info.linkname = tarfile.SYMTYPE, link
            tar.addfile(info)
        else:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


@pytest.mark.parametrize("bad", [_tar("../x"), _tar("/abs"), _tar("esc", link="../../.."),
                                 _tar(".wh.passwd")])
def test_tar_in_refuses_escapes(ctr: tuple[Path, int], bad: io.BytesIO) -> None:
    with pytest.raises(InvalidArgument, match="cannot extract"):
        archive.extract(ctr[1], "/data", "web", bad, False, True)


def test_tar_in_through_links_lands_in_the_root(ctr: tuple[Path, int], tmp_path: Path) -> None:
    archive.extract(ctr[1], "/rootlink/data", "web", _tar("new.txt", b"new"), False, True)
    assert (ctr[0] / "data" / "new.txt").read_bytes() == b"new"
    with pytest.raises(InvalidArgument, match="cannot overwrite directory"):
        archive.extract(ctr[1], "/", "web", _tar("etc", b"file"), False, True)
    with pytest.raises(NotFound):
        archive.extract(ctr[1], "/hostlink", "web", _tar("pwned", b"x"), False, True)
    assert sorted(os.listdir(tmp_path / "host")) == ["secret"]


def test_update_merges_docker_fields_and_checks_them() -> None:
    hc, warnings = merged_host_config({"Memory": 0}, {"Memory": 128 << 20, "CpuShares": 512,
                                                      "RestartPolicy": {"Name": "always"}})
    assert hc["Memory"] == 128 << 20 and hc["CpuShares"] == 512
    assert hc["RestartPolicy"] == {"Name": "always", "MaximumRetryCount": 0}
    with pytest.raises(InvalidArgument, match="Minimum memory limit allowed is 6MB"):
        merged_host_config({}, {"Memory": 1 << 20})
    with pytest.raises(InvalidArgument, match="smaller than already set memoryswap"):
        merged_host_config({"Memory": 64 << 20, "MemorySwap": 128 << 20}, {"Memory": 256 << 20})
    with pytest.raises(InvalidArgument, match="AutoRemove"):
        merged_host_config({"AutoRemove": True}, {"RestartPolicy": {"Name": "always"}})
    hc, _ = merged_host_config({"RestartPolicy": {"Name": "always"}},
                               {"Memory": 64 << 20, "RestartPolicy": {"Name": ""}})
    assert hc["RestartPolicy"] == {"Name": "always"}  # docker's empty policy changes nothing
    hc, _ = merged_host_config({"CpuQuota": 50000, "CpuPeriod": 100000}, {"NanoCpus": 10**9})
    assert (hc["NanoCpus"], hc["CpuQuota"], hc["CpuPeriod"]) == (10**9, 0, 0)
