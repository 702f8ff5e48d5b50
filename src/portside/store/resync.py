"""Unpack an archive over the tree an earlier unpack of a similar archive left.

The daemon's build contexts come again and again with the same files: creating and removing
a thousand files costs more than the build itself on a busy disk. `resync` makes `target`
exactly what unpacking the archive into an empty directory would make, with the same
checks (it is `unpack`'s unpacker), but a regular file whose content is the one recorded
the last time (same size, same sha256 in `previous`) is kept: only its owner, mode and
times are set again. Everything else is written as `unpack` writes it, and whatever the
archive does not name is removed. The content of a kept file is hashed as it streams in
(held in memory, at most REUSE_MAX bytes a file), so nothing is trusted that was not seen.

The tree must be private to the caller between calls: `previous` vouches for its files
only while nothing else writes there. On any error the target is removed whole.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
from pathlib import Path
from typing import IO

from portside.errors import UnsafeLayer
from portside.store.tarstream import Entry, Stream
from portside.store.unpack import (
    _O_DIR,
    LayerError,
    Unpacked,
    UnpackPolicy,
    _Unpacker,
    run_unpacker,
    unpack,
)

REUSE_MAX = 64 << 20  # larger files are written again rather than held in memory
_O_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


class _Resyncer(_Unpacker):
    def __init__(
        self,
        root_fd: int,
        layer: str,
        policy: UnpackPolicy,
        digests: dict[bytes, str],
        previous: dict[bytes, str],
    ) -> None:
        super().__init__(root_fd, layer, policy, digests)
        self.previous = previous
        self.seen: set[bytes] = set()
        self.kept = 0

    def _apply(self, e: Entry, stream: Stream) -> None:
        self.seen.add(b"/".join(self._parts(e.name)))
        super()._apply(e, stream)

    def _open_dir(self, parent: int, comp: bytes, path: bytes, create: bool) -> int:
        """A non-directory the earlier tree left where this archive needs a directory goes
        (one this archive made stays an error, as in `unpack`)."""
        try:
            return super()._open_dir(parent, comp, path, create)
        except (LayerError, UnsafeLayer):  # not a directory, or a symlink
            if path in self.seen or not create:
                raise
            os.unlink(comp, dir_fd=parent)
            return super()._open_dir(parent, comp, path, create)

    def _directory(self, e: Entry, parent: int, base: bytes, key: bytes) -> None:
        super()._directory(e, parent, base, key)
        fd = os.open(base, _O_DIR, dir_fd=parent)
        try:
            _drop_xattrs(fd, e.xattrs)  # the earlier tree's, if it had the directory
        finally:
            os.close(fd)

    def _regular(self, e: Entry, stream: Stream, parent: int, base: bytes, key: bytes) -> None:
        old = self.previous.get(key)
        if old is None or e.size > REUSE_MAX or key in self.files:
            super()._regular(e, stream, parent, base, key)
            return
        try:
            fd = os.open(base, _O_READ, dir_fd=parent)
        except OSError:  # missing, a symlink, unreadable: written as new
            super()._regular(e, stream, parent, base, key)
            return
        try:
            st = os.fstat(fd)
            same = stat.S_ISREG(st.st_mode) and st.st_nlink == 1 and st.st_size == e.size
            data = bytearray()
            h = hashlib.sha256()

            def hold(view: memoryview) -> int:
                h.update(view)
                data.extend(view)
                return len(view)

            if e.size:
                stream.copy(hold, e.size)
            digest = "sha256:" + h.hexdigest()
            if same and digest == old:
                self._own_and_mode(fd, None, e)
                _drop_xattrs(fd, e.xattrs)
                if e.xattrs:
                    self._set_xattrs(fd, e.xattrs)
                os.utime(fd, ns=(e.atime_ns, e.mtime_ns))
                self.kept += 1
            else:
                os.close(fd)
                fd = -1
                self._clear(parent, base, key)
                self._rewrite(e, bytes(data), parent, base, key)
        finally:
            if fd >= 0:
                os.close(fd)
        assert self.digests is not None
        self.digests[key] = digest
        self.size += e.size
        self.files.add(key)

    def _rewrite(self, e: Entry, data: bytes, parent: int, base: bytes, key: bytes) -> None:
        """A changed file: the base class writes it from a stream of the bytes held."""
        held = Stream(_Chunks(data).read, len(data) + 1)
        digests, self.digests = self.digests, None
        try:
            super()._regular(e, held, parent, base, key)
        finally:
            self.digests = digests
        self.size -= e.size  # counted again by the caller

    def _fix_dir_times(self) -> None:
        self._remove_unseen()  # first: removing entries changes their directories' mtimes
        super()._fix_dir_times()

    def _remove_unseen(self) -> None:
        """Whatever the earlier tree had and this archive does not name goes; a directory
        kept on the way to a named entry is made what `unpack` would make of it (0755,
        ours, no xattrs)."""
        keep = set(self.seen)
        for key in self.seen:
            while b"/" in key:
                key = key.rpartition(b"/")[0]
                keep.add(key)
        self._forget_dirs()
        for top, dirs, files, top_fd in os.fwalk(b".", dir_fd=self.root_fd):
            prefix = top[2:] + b"/" if top != b"." else b""
            for name in files:
                if prefix + name not in keep:
                    os.unlink(name, dir_fd=top_fd)
            for name in list(dirs):
                key = prefix + name
                if key not in keep:
                    if stat.S_ISLNK(os.lstat(name, dir_fd=top_fd).st_mode):
                        os.unlink(name, dir_fd=top_fd)  # fwalk lists links to directories here
                    else:
                        shutil.rmtree(name, dir_fd=top_fd)
                    dirs.remove(name)
                elif key not in self.seen:
                    self._implicit(top_fd, name)

    def _implicit(self, parent: int, name: bytes) -> None:
        fd = os.open(name, _O_DIR, dir_fd=parent)
        try:
            if self.owners:
                os.fchown(fd, os.geteuid(), os.getegid())
            os.fchmod(fd, 0o755)
            _drop_xattrs(fd, {})
        finally:
            os.close(fd)


def _drop_xattrs(fd: int, wanted: dict[bytes, bytes]) -> None:
    """Remove the extended attributes not in `wanted` (an earlier tree's)."""
    with contextlib.suppress(OSError):
        for name in os.listxattr(fd):
            if os.fsencode(name) not in wanted:
                try:
                    os.removexattr(fd, name)
                except OSError as exc:
                    if exc.errno not in (errno.ENODATA, errno.EPERM, errno.ENOTSUP):
                        raise


class _Chunks:
    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0

    def read(self, n: int) -> bytes:
        chunk = bytes(self._data[self._pos : self._pos + n])
        self._pos += len(chunk)
        return chunk


def resync(
    source: IO[bytes],
    target: Path,
    previous: dict[bytes, str],
    *,
    layer: str = "",
    policy: UnpackPolicy | None = None,
    file_digests: dict[bytes, str],
) -> Unpacked:
    """Make `target` what `unpack(source, target)` would make of an empty directory, keeping
    the files `previous` (path -> sha256, from the last call's `file_digests`) still holds.
    A missing `target` is simply unpacked. `file_digests` gets every regular file's sha256."""
    if not target.is_dir():
        return unpack(source, target, layer=layer, policy=policy, file_digests=file_digests)
    policy = policy or UnpackPolicy.from_env()
    root_fd = os.open(target, _O_DIR)
    resyncer = _Resyncer(root_fd, layer, policy, file_digests, previous)
    try:
        return run_unpacker(resyncer, source, layer, policy)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    finally:
        resyncer.close()
        os.close(root_fd)
