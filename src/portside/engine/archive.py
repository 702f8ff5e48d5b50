"""`docker cp` and `docker export` on the engine side: stat, tar out, tar in.

Everything works on descriptors from `rootfs.open_root`/`rootfs.resolve`: trees are read
with `*at` calls and O_NOFOLLOW (a symlink is archived as a symlink, never followed), and
an uploaded tar is extracted by the store's hardened unpacker (`store.unpack`), whose
root is the destination directory's descriptor: `..`, absolute names, relative links
that climb out and writes through symlinks are refused.

The path-stat header is Docker's `X-Docker-Container-Path-Stat`: base64 of a JSON object
{name, size, mode, mtime, linkTarget} with `mode` in Go's os.FileMode bits, which the
docker client decodes to decide between file and directory.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import stat
import tarfile
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any

from portside.engine import rootfs
from portside.errors import InvalidArgument, PortsideError, UnsafeLayer
from portside.store import unpack as unpack_mod
from portside.store.tarstream import DIRECTORY, Entry, Stream

STAT_HEADER = "X-Docker-Container-Path-Stat"
KERNEL_MOUNTS = ("proc", "sys", "dev")
CHUNK = 256 * 1024

# Go's os.FileMode type bits (io/fs), as Docker puts them in the stat header.
_GO_DIR = 1 << 31
_GO_SYMLINK = 1 << 27
_GO_DEVICE = 1 << 26
_GO_PIPE = 1 << 25
_GO_SOCKET = 1 << 24
_GO_SETUID = 1 << 23
_GO_SETGID = 1 << 22
_GO_CHARDEV = 1 << 21
_GO_STICKY = 1 << 20


class ReadOnlyTarget(PortsideError):
    http_status = 403

    def __init__(self, path: str) -> None:
        super().__init__(f"container rootfs is marked read-only: cannot write to {path}")


class OverwriteRefused(InvalidArgument):
    """`noOverwriteDirNonDir`: a directory and a non-directory never replace each other."""


def go_mode(mode: int) -> int:
    out = stat.S_IMODE(mode) & 0o777
    kind = stat.S_IFMT(mode)
    out |= {stat.S_IFDIR: _GO_DIR, stat.S_IFLNK: _GO_SYMLINK, stat.S_IFIFO: _GO_PIPE,
            stat.S_IFSOCK: _GO_SOCKET, stat.S_IFBLK: _GO_DEVICE,
            stat.S_IFCHR: _GO_DEVICE | _GO_CHARDEV}.get(kind, 0)
    if mode & stat.S_ISUID:
        out |= _GO_SETUID
    if mode & stat.S_ISGID:
        out |= _GO_SETGID
    if mode & stat.S_ISVTX:
        out |= _GO_STICKY
    return out


def _base(path: str) -> str:
    """Docker's `filepath.Base` of the path as asked (`.` kept: "copy the contents")."""
    if path.endswith("/.") or path == ".":
        return "."
    parts = [p for p in path.split("/") if p]
    return parts[-1] if parts else "/"


def _follows(path: str) -> bool:
    """A trailing `/` (or `/.`) asks for the directory a symlink points to."""
    return path.endswith(("/", "/."))


def path_stat(root: int, path: str, container: str) -> dict[str, Any]:
    """The stat document of `path` (its last component not followed unless the path ends
    with `/`); PathNotFound."""
    r = rootfs.resolve(root, path, container, follow_last=_follows(path))
    try:
        if not r.exists:
            raise rootfs.PathNotFound(path, container)
        st = r.lstat()
        link = ""
        if stat.S_ISLNK(st.st_mode):
            target = rootfs.resolve(root, path, container, follow_last=True)
            link = target.path
            target.close(root)
        mtime = datetime.fromtimestamp(st.st_mtime, UTC).isoformat().replace("+00:00", "Z")
        return {"name": _base(path), "size": st.st_size, "mode": go_mode(st.st_mode),
                "mtime": mtime, "linkTarget": link}
    finally:
        r.close(root)


def encode_stat(doc: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


# -- tar out ----------------------------------------------------------------------------------


class _Sink:
    """The file object tarfile writes to: chunks of CHUNK bytes go to `emit`."""

    def __init__(self, emit: Callable[[bytes], None]) -> None:
        self.emit = emit
        self.buffer = bytearray()
        self.position = 0

    def write(self, data: bytes) -> int:
        self.buffer += data
        self.position += len(data)
        if len(self.buffer) >= CHUNK:
            self.flush()
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        if self.buffer:
            self.emit(bytes(self.buffer))
            self.buffer.clear()


class _TreeWriter:
    """Adds entries read through directory descriptors to a tar (hardlinks kept)."""

    def __init__(self, tar: tarfile.TarFile, skip_dev: int | None = None) -> None:
        self.tar = tar
        self.seen: dict[tuple[int, int], str] = {}
        # The root's device when walking a running container from its `/`: the kernel's
        # filesystems mounted at /proc, /sys and /dev are entered only when asked for by
        # name (Docker's archive of `/` has them empty, as they are in its rootfs).
        self.skip_dev = skip_dev

    def add(self, parent: int, name: str, arcname: str) -> None:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        info = tarfile.TarInfo(arcname)
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        info.uname = info.gname = ""
        info.mtime = int(st.st_mtime)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
            if self.skip_dev is not None and "/" not in arcname.strip("/") and \
                    arcname.strip("/") in KERNEL_MOUNTS and st.st_dev != self.skip_dev:
                self.tar.addfile(info)
                return
            fd = os.open(name, rootfs.O_DIR, dir_fd=parent)
            try:
                self.tar.addfile(info)
                self.children(fd, arcname)
            finally:
                os.close(fd)
        elif stat.S_ISREG(mode):
            first = self.seen.setdefault((st.st_dev, st.st_ino), arcname) \
                if st.st_nlink > 1 else arcname
            if first != arcname:
                info.type, info.linkname = tarfile.LNKTYPE, first
                self.tar.addfile(info)
                return
            # O_NONBLOCK: if a running container swapped the file for a fifo meanwhile,
            # the open must not hang; what was opened is checked again below.
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                         dir_fd=parent)
            with os.fdopen(fd, "rb") as f:
                now = os.fstat(f.fileno())
                if not stat.S_ISREG(now.st_mode):
                    return  # replaced while we looked: skipped, as a vanished file
                info.size = now.st_size
                self.tar.addfile(info, f)
        elif stat.S_ISLNK(mode):
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(name, dir_fd=parent)
            self.tar.addfile(info)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            self.tar.addfile(info)
        elif stat.S_ISFIFO(mode):
            info.type = tarfile.FIFOTYPE
            self.tar.addfile(info)
        # sockets have no tar form: skipped, as Docker does

    def children(self, fd: int, arcname: str) -> None:
        prefix = f"{arcname}/" if arcname else ""
        for child in sorted(os.listdir(fd)):
            self.add(fd, child, prefix + child)


def write_path(root: int, path: str, container: str, emit: Callable[[bytes], None]) -> None:
    """A tar of `path` (a file, a link as itself, or a directory with its tree), its
    entries named from the path's base name as Docker names them."""
    r = rootfs.resolve(root, path, container, follow_last=_follows(path))
    try:
        if not r.exists:
            raise rootfs.PathNotFound(path, container)
        sink = _Sink(emit)
        with tarfile.open(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            writer = _TreeWriter(tar)
            base = _base(path)
            if not r.name:  # the root itself
                fd = r.open_dir()
                try:
                    writer.skip_dev = os.fstat(fd).st_dev
                    writer.children(fd, "" if base == "/" else base)
                finally:
                    os.close(fd)
            else:
                writer.add(r.parent, r.name, base)
        sink.flush()
    finally:
        r.close(root)


def tar_local(path: str, arcname: str, emit: Callable[[bytes], None]) -> None:
    """A tar of the host path `path` named `arcname` (`.`: a directory's contents), read
    by descriptors like a container's (what `portside cp` sends)."""
    parent = os.open(os.path.dirname(path) or "/", rootfs.O_DIR & ~os.O_NOFOLLOW)
    try:
        sink = _Sink(emit)
        with tarfile.open(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            writer = _TreeWriter(tar)
            name = os.path.basename(path)
            if arcname == "." and os.path.isdir(path):
                fd = os.open(name, rootfs.O_DIR, dir_fd=parent)
                try:
                    writer.children(fd, "")
                finally:
                    os.close(fd)
            else:
                writer.add(parent, name, arcname)
        sink.flush()
    finally:
        os.close(parent)


def write_tree(root: int, emit: Callable[[bytes], None]) -> None:
    """The whole tree under `root` (what `docker export` gives: names without `./`)."""
    sink = _Sink(emit)
    with tarfile.open(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
        fd = os.open(".", rootfs.O_DIR, dir_fd=root)
        try:
            _TreeWriter(tar).children(fd, "")
        finally:
            os.close(fd)
    sink.flush()


# -- tar in -----------------------------------------------------------------------------------


class _CopyIn(unpack_mod._Unpacker):  # noqa: SLF001 - the store's unpacker, with cp's rules
    """The layer unpacker with Docker's extraction options instead of layer semantics:
    `.wh.` names are refused (no whiteouts outside layers), owners are `owner` when given
    (the container's root, unless `copyUIDGID`), with `noOverwriteDirNonDir` an existing
    directory and a non-directory never replace each other, and `rebase` renames the
    archive's top name (what `docker cp` does when the destination has another name)."""

    def __init__(self, root_fd: int, policy: unpack_mod.UnpackPolicy,
                 owner: tuple[int, int] | None, no_overwrite_dir_non_dir: bool,
                 rebase: tuple[str, str] | None) -> None:
        super().__init__(root_fd, "archive", policy)
        self.owner = owner
        if owner is not None:
            self.owners = True
        self.no_overwrite = no_overwrite_dir_non_dir
        self.rebase = (rebase[0].encode(), rebase[1].encode()) if rebase else None
        self.kind = DIRECTORY

    def _apply(self, e: Entry, stream: Stream) -> None:
        if not self._parts(e.name) and e.kind == DIRECTORY:
            return  # `./`: the destination itself keeps its owner and mode (as Docker)
        if self.rebase is not None:
            old, new = self.rebase
            name = e.name.removeprefix(b"./")
            if name == old or name.startswith(old + b"/"):
                e = dataclasses.replace(e, name=new + name[len(old):])
        if self.owner is not None:
            e = dataclasses.replace(e, uid=self.owner[0], gid=self.owner[1])
        self.kind = e.kind
        super()._apply(e, stream)

    def _whiteout(self, parent_key: bytes, base: bytes) -> None:
        raise self.unsafe("whiteout entries only belong in image layers")

    def _clear(self, parent: int, base: bytes, key: bytes, keep_dir: bool = False) -> bool:
        if self.no_overwrite:
            with_dir = self.kind == DIRECTORY
            try:
                st = os.stat(base, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            if st is not None and stat.S_ISDIR(st.st_mode) and not with_dir:
                raise OverwriteRefused(f"cannot overwrite directory {key.decode(errors='replace')!r}"
                                       " with non-directory")
            if st is not None and not stat.S_ISDIR(st.st_mode) and with_dir:
                raise OverwriteRefused(f"cannot overwrite non-directory"
                                       f" {key.decode(errors='replace')!r} with directory")
        return super()._clear(parent, base, key, keep_dir)


def extract_at(fd: int, source: IO[bytes], where: str, owner: tuple[int, int] | None = None,
               no_overwrite_dir_non_dir: bool = False,
               rebase: tuple[str, str] | None = None) -> None:
    """Extract the tar `source` (plain, gzip or zstd) into the directory descriptor `fd`
    (`where` names it in errors); the caller closes `fd`."""
    from portside.store.tarstream import Bomb, TarFormatError, Truncated, open_stream

    policy = unpack_mod.UnpackPolicy.from_env()
    unpacker = _CopyIn(fd, policy, owner, no_overwrite_dir_non_dir, rebase)
    try:
        stream, _ = open_stream(source, None, policy.max_bytes)
        unpacker.run(stream)
    except TarFormatError as exc:
        raise InvalidArgument(f"cannot extract the archive into {where}: {exc.reason}") from None
    except (Bomb, Truncated) as exc:
        raise InvalidArgument(f"cannot extract the archive into {where}: {exc}") from None
    except (UnsafeLayer, unpack_mod.LayerError) as exc:
        raise InvalidArgument(f"cannot extract the archive into {where}: {exc}") from None
    finally:
        unpacker.close()


def extract(root: int, path: str, container: str, source: IO[bytes], copy_owner: bool,
            no_overwrite_dir_non_dir: bool,
            writable: Callable[[str], bool] | None = None) -> None:
    """Extract the tar `source` into the container's directory `path`; `writable` says
    whether a resolved path may be written to (a read-only root's volumes may)."""
    r = rootfs.resolve(root, path, container, follow_last=True)
    try:
        if not r.exists:
            raise rootfs.PathNotFound(path, container)
        if writable is not None and not writable(r.path):
            raise ReadOnlyTarget(path)
        if not stat.S_ISDIR(r.lstat().st_mode):
            raise InvalidArgument(f"extraction point is not a directory: {path}")
        fd = r.open_dir()
    finally:
        r.close(root)
    if os.fstatvfs(fd).f_flag & os.ST_RDONLY:
        os.close(fd)
        raise ReadOnlyTarget(path)
    try:
        extract_at(fd, source, path, None if copy_owner else (0, 0), no_overwrite_dir_non_dir)
    finally:
        os.close(fd)
