"""Unpack one OCI layer into a directory: streaming, in one pass, safe against hostile layers.

The layer (a tar, plain, gzip or zstd) is decompressed and parsed as it is read, never held
whole in memory, by `portside.store.tarstream`, which also computes the sha256 of the
uncompressed stream (the layer's diff_id); this module decides what each entry becomes on
disk. Every entry is created by this module with `*at` system calls relative to a
directory file descriptor opened with O_NOFOLLOW from the target's own descriptor, so no
symlink (planted by an earlier entry or not) can ever redirect a write outside the target:
a path that would go through a symlink is refused. `tarfile.extract*` is never used.

OCI whiteouts (image-spec layer.md, "Whiteouts") are converted to overlayfs' form, so the
result can be an overlay lower directory: `.wh.NAME` becomes a 0/0 character device NAME,
and `.wh..wh..opq` the xattr `trusted.overlay.opaque=y` on its directory.

What is refused, with `UnsafeLayer` naming the entry: `..` components, absolute paths,
relative symlinks that climb above the root, hardlinks to anything but a file extracted
earlier from the same layer, setuid/setgid device files, device nodes when the policy
forbids them, overlayfs xattrs set by the layer itself, and layers beyond the configured
limits of uncompressed bytes, entries and path length. Damaged archives raise
`CorruptLayer`. On any error the target is left as it was before the call.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

from portside.errors import InvalidArgument, PortsideError, UnsafeLayer
from portside.numbers import is_digits
from portside.store.tarstream import (
    BLOCKDEV,
    CHAR,
    DIRECTORY,
    FIFO,
    HARDLINK,
    REGULAR,
    SYMLINK,
    Bomb,
    Entry,
    Stream,
    TarFormatError,
    Truncated,
    entries,
    open_stream,
)

DIR_CACHE = 256  # open directory descriptors kept between entries

WHITEOUT = b".wh."
OPAQUE = b".wh..wh..opq"
OVERLAY_OPAQUE = b"trusted.overlay.opaque"
# Xattrs only portside may set: they steer overlayfs (opaque dirs, redirects, metacopy).
OVERLAY_XATTRS = (b"trusted.overlay.", b"user.overlay.")

_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_O_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class LayerError(PortsideError):
    """A layer could not be unpacked; the message names the layer and, when known, the entry."""

    http_status = 400

    def __init__(self, layer: str, reason: str, entry: str | None = None) -> None:
        where = f"layer {layer or '(stream)'}"
        if entry is not None:
            where += f": entry {entry!r}"
        super().__init__(f"{where}: {reason}")
        self.layer = layer
        self.entry = entry
        self.reason = reason


class CorruptLayer(LayerError):
    """The archive is damaged, truncated or not a tar at all."""


@dataclass(frozen=True)
class UnpackPolicy:
    """Limits and choices for unpacking untrusted layers.

    The defaults can be changed with PORTSIDE_MAX_LAYER_BYTES (a size: 64G, 512M, 1000000),
    PORTSIDE_MAX_LAYER_ENTRIES and PORTSIDE_MAX_LAYER_PATH; see `from_env`.
    """

    max_bytes: int = 64 << 30  # uncompressed tar bytes: the decompression-bomb limit
    max_entries: int = 4_000_000
    max_path: int = 4096  # bytes in an entry's path or a link's target (PATH_MAX)
    allow_devices: bool = True  # char/block device nodes, as Docker allows (we are root)
    preserve_owner: bool | None = None  # None: when running as root
    # A stream ending cleanly after an entry is complete without its end-of-archive marker
    # (Go's archive/tar reads such tars, and the docker client sends build contexts so).
    # Layers stay strict: their diff_id covers the whole stream.
    eof_ends_archive: bool = False
    # `.wh.` names are OCI whiteouts in a layer; in a build context they are plain names.
    whiteouts: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> UnpackPolicy:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for key, field_name in (
            ("PORTSIDE_MAX_LAYER_BYTES", "max_bytes"),
            ("PORTSIDE_MAX_LAYER_ENTRIES", "max_entries"),
            ("PORTSIDE_MAX_LAYER_PATH", "max_path"),
        ):
            if env.get(key):
                values[field_name] = parse_size(env[key], key)
        values.update(overrides)
        return cls(**values)

    @property
    def owners(self) -> bool:
        return os.geteuid() == 0 if self.preserve_owner is None else self.preserve_owner


_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str, where: str = "size") -> int:
    """`64G`, `512MiB`, `1000000` -> bytes (binary units); InvalidArgument otherwise."""
    value = text.strip().lower().removesuffix("ib").removesuffix("b")
    unit = value[-1:] if value[-1:] in _UNITS else ""
    number = value[: len(value) - len(unit)].strip()
    if not is_digits(number) or int(number) <= 0:
        raise InvalidArgument(f"{where}: {text!r} is not a positive size (like 64G or 1000000)")
    return int(number) * _UNITS[unit]


@dataclass(frozen=True)
class Unpacked:
    diff_id: str  # sha256 of the uncompressed tar stream
    size: int  # bytes of file content written
    tar_size: int  # bytes of the uncompressed tar stream
    entries: int
    compression: str  # "", "gzip" or "zstd": what the stream turned out to be


def _umask() -> int:
    """The process umask, read without changing it (os.umask would, for other threads)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(b"Umask:"):
                return int(line.split()[1], 8)
    return 0o777  # unknown: always chmod


def _show(name: bytes) -> str:
    return name.decode("utf-8", "backslashreplace")


def _copy_hashed(stream: Stream, fd: int, size: int) -> str:
    """Write the next `size` bytes of `stream` to `fd`; their sha256, taken on the way."""
    h = hashlib.sha256()

    def write(view: memoryview) -> int:
        h.update(view)
        done = os.write(fd, view)
        while done < len(view):
            done += os.write(fd, view[done:])
        return done

    if size:
        stream.copy(write, size)
    return "sha256:" + h.hexdigest()


# -- the unpacker ---------------------------------------------------------------------------


class _Unpacker:
    def __init__(
        self,
        root_fd: int,
        layer: str,
        policy: UnpackPolicy,
        digests: dict[bytes, str] | None = None,
    ) -> None:
        self.root_fd = root_fd
        self.digests = digests  # when given: path -> sha256 of the file's content
        self.layer = layer
        self.policy = policy
        self.owners = policy.owners
        # Mode bits the creating open(2) cannot set exactly; without them, no fchmod needed.
        self.chmod_bits = 0o7000 | _umask()
        self.dirs: dict[bytes, int] = {}  # open descriptors of directories, by path
        self.files: set[bytes] = set()  # non-directories of this layer: hardlink targets
        self.whiteouts: set[bytes] = set()  # paths turned into whiteout devices here
        self.dir_times: list[tuple[bytes, int, int]] = []
        self.size = 0
        self.count = 0
        self.entry = b""

    # errors

    def unsafe(self, reason: str, name: bytes | None = None) -> UnsafeLayer:
        return UnsafeLayer(
            self.layer or "(stream)", _show(self.entry if name is None else name), reason
        )

    def corrupt(self, reason: str) -> CorruptLayer:
        return CorruptLayer(self.layer, reason, _show(self.entry) if self.entry else None)

    # the entry loop

    def run(self, stream: Stream) -> None:
        for entry in entries(stream, self.policy.max_entries, self.policy.eof_ends_archive):
            self.entry = entry.name
            self.count += 1
            if len(self.dirs) > DIR_CACHE:
                self._forget_dirs()
            try:
                self._apply(entry, stream)
            except OSError as exc:
                raise LayerError(
                    self.layer, f"cannot create it: {exc.strerror or exc}", _show(entry.name)
                ) from None
        self.entry = b"(end of archive)"
        stream.drain()
        self._fix_dir_times()

    # paths

    def _parts(self, name: bytes, what: str = "path") -> list[bytes]:
        """The normalised components of a member path; refuses what could escape the root."""
        if len(name) > self.policy.max_path:
            raise self.unsafe(f"{what} longer than {self.policy.max_path} bytes (limit)")
        while name.startswith(b"./"):
            name = name[2:]
        if name.startswith(b"/"):
            raise self.unsafe(f"absolute {what}")
        parts = name.split(b"/")
        if b".." in parts:
            raise self.unsafe(f"'..' in the {what}")
        if b"" in parts or b"." in parts:
            parts = [p for p in parts if p and p != b"."]
        return parts

    def _forget_dirs(self, under: bytes | None = None) -> None:
        """Close cached directory descriptors: all, or those at and below `under`."""
        for key in list(self.dirs):
            if under is None or key == under or key.startswith(under + b"/"):
                os.close(self.dirs.pop(key))

    def _dir(self, key: bytes, create: bool = True) -> int:
        """A descriptor of directory `key`, opened component by component with O_NOFOLLOW.

        Missing directories are created (0755, like Docker) when `create`. A component that
        is a symlink is refused: nothing is ever written through one.
        """
        if not key:
            return self.root_fd
        fd = self.dirs.get(key)
        if fd is not None:
            return fd
        base_key = key
        todo: list[bytes] = []
        while base_key and base_key not in self.dirs:
            base_key, _, comp = base_key.rpartition(b"/")
            todo.append(comp)
        fd = self.dirs[base_key] if base_key else self.root_fd
        path = base_key
        transient = False  # intermediate descriptors are closed once their child is open
        for comp in reversed(todo):
            path = path + b"/" + comp if path else comp
            try:
                new = self._open_dir(fd, comp, path, create)
            finally:
                if transient:
                    os.close(fd)
            fd, transient = new, True
        self.dirs[key] = fd
        return fd

    def _open_dir(self, parent: int, comp: bytes, path: bytes, create: bool) -> int:
        if comp.startswith(WHITEOUT) and self.policy.whiteouts:
            raise self.unsafe(f"the whiteout {_show(path)!r} cannot be a directory")
        try:
            return os.open(comp, _O_DIR, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise self.corrupt(f"{_show(path)!r} does not exist") from None
            os.mkdir(comp, 0o755, dir_fd=parent)
            os.chmod(comp, 0o755, dir_fd=parent)
            return os.open(comp, _O_DIR, dir_fd=parent)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            st = os.stat(comp, dir_fd=parent, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                raise self.unsafe(
                    f"{_show(path)!r} is a symlink: refusing to write through it"
                ) from None
            raise self.corrupt(f"{_show(path)!r} is not a directory") from None

    def _clear(self, parent: int, base: bytes, key: bytes, keep_dir: bool = False) -> bool:
        """Remove what is at `key` so an entry can replace it (layer.md, "Changeset over
        existing files"); a directory stays when `keep_dir`. True if a directory remains."""
        try:
            st = os.stat(base, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            self._forget_dirs(key)
            shutil.rmtree(os.fsdecode(base), dir_fd=parent)
        else:
            os.unlink(base, dir_fd=parent)
        self.files.discard(key)
        return False

    # entries

    def _apply(self, e: Entry, stream: Stream) -> None:
        parts = self._parts(e.name)
        for xattr in e.xattrs:
            if xattr.startswith(OVERLAY_XATTRS):
                raise self.unsafe(f"sets the overlayfs xattr {_show(xattr)!r}")
        if not parts:
            if e.kind != DIRECTORY:
                raise self.unsafe("the root can only be a directory")
            self._own_and_mode(self.root_fd, None, e)
            self._set_xattrs(self.root_fd, e.xattrs)
            self.dir_times.append((b"", e.atime_ns, e.mtime_ns))
            return
        base = parts[-1]
        parent_key = b"/".join(parts[:-1])
        key = b"/".join(parts)
        if base.startswith(WHITEOUT) and self.policy.whiteouts:
            self._whiteout(parent_key, base)
            return
        kind = e.kind
        if self.digests is not None and kind not in REGULAR:
            self.digests.pop(key, None)  # whatever was there is replaced
        if kind in REGULAR:
            self._regular(e, stream, self._dir(parent_key), base, key)
            return
        if kind == HARDLINK:
            self._hardlink(e, self._dir(parent_key), base, key)
            return
        if kind == SYMLINK:
            self._check_symlink(e.linkname, parts)
        if kind in (CHAR, BLOCKDEV):
            if not self.policy.allow_devices:
                raise self.unsafe("device nodes are not allowed here (policy)")
            if e.mode & (stat.S_ISUID | stat.S_ISGID):
                raise self.unsafe("setuid/setgid bit on a device file")
        parent = self._dir(parent_key)
        if kind == DIRECTORY:
            self._directory(e, parent, base, key)
            return
        self._special(e, parent, base, key)

    def _regular(self, e: Entry, stream: Stream, parent: int, base: bytes, key: bytes) -> None:
        mode = e.mode & 0o777  # the descriptor is writable whatever the mode says
        try:
            fd = os.open(base, _O_FILE, mode, dir_fd=parent)
        except FileExistsError:
            self._clear(parent, base, key)
            fd = os.open(base, _O_FILE, mode, dir_fd=parent)
        try:
            if self.digests is not None:
                self.digests[key] = _copy_hashed(stream, fd, e.size)
            elif e.size:
                stream.copy(partial(os.write, fd), e.size)
            if self.owners:
                os.fchown(fd, e.uid, e.gid)
            if e.mode & self.chmod_bits:
                os.fchmod(fd, e.mode)  # after chown, which clears setuid/setgid
            if e.xattrs:
                self._set_xattrs(fd, e.xattrs)  # after chown and write: they drop capabilities
            os.utime(fd, ns=(e.atime_ns, e.mtime_ns))
        finally:
            os.close(fd)
        self.size += e.size
        self.files.add(key)

    def _hardlink(self, e: Entry, parent: int, base: bytes, key: bytes) -> None:
        target = self._parts(e.linkname, "hardlink target")
        target_key = b"/".join(target)
        if target_key not in self.files:
            raise self.unsafe(
                f"hardlink target {_show(e.linkname)!r} is not a file extracted earlier"
                " from this layer"
            )
        if target_key == key:
            return
        if self.digests is not None:  # the same content as its target
            self.digests.pop(key, None)
            if target_key in self.digests:
                self.digests[key] = self.digests[target_key]
        source_key = b"/".join(target[:-1])
        for attempt in (0, 1):
            # Resolved again after a replacement, which may have closed its descriptor.
            source = self._dir(source_key, create=False)
            try:
                os.link(
                    target[-1], base, src_dir_fd=source, dst_dir_fd=parent, follow_symlinks=False
                )
                break
            except FileExistsError:
                if attempt:
                    raise
                self._clear(parent, base, key)
        self.files.add(key)

    def _check_symlink(self, target: bytes, parts: list[bytes]) -> None:
        """Absolute targets are fine (they resolve inside the container's root); a relative
        target must not climb above the root from the link's directory."""
        if not target:
            raise self.corrupt("symlink with an empty target")
        if len(target) > self.policy.max_path:
            raise self.unsafe(f"symlink target longer than {self.policy.max_path} bytes (limit)")
        if target.startswith(b"/"):
            return
        depth = len(parts) - 1
        for comp in target.split(b"/"):
            if comp == b"..":
                depth -= 1
                if depth < 0:
                    raise self.unsafe(f"symlink target {_show(target)!r} leads outside the layer")
            elif comp and comp != b".":
                depth += 1

    def _directory(self, e: Entry, parent: int, base: bytes, key: bytes) -> None:
        was_whiteout = key in self.whiteouts
        try:
            os.mkdir(base, 0o700, dir_fd=parent)
        except FileExistsError:
            if not self._clear(parent, base, key, keep_dir=True):
                os.mkdir(base, 0o700, dir_fd=parent)
        fd = os.open(base, _O_DIR, dir_fd=parent)
        try:
            self._own_and_mode(fd, None, e)
            self._set_xattrs(fd, e.xattrs)
            if was_whiteout:
                # `.wh.D` then `D/` in one layer: the new D must hide the lower D's content.
                os.setxattr(fd, OVERLAY_OPAQUE, b"y")
        finally:
            os.close(fd)
        self.whiteouts.discard(key)
        self.dir_times.append((key, e.atime_ns, e.mtime_ns))

    def _special(self, e: Entry, parent: int, base: bytes, key: bytes) -> None:
        """Symlinks, devices and fifos: created by name in their parent's descriptor."""
        for attempt in (0, 1):
            try:
                if e.kind == SYMLINK:
                    os.symlink(e.linkname, base, dir_fd=parent)
                elif e.kind == FIFO:
                    os.mkfifo(base, 0o600, dir_fd=parent)
                else:
                    kind = stat.S_IFCHR if e.kind == CHAR else stat.S_IFBLK
                    os.mknod(base, kind | 0o600, os.makedev(e.major, e.minor), dir_fd=parent)
                break
            except FileExistsError:
                if attempt:
                    raise
                self._clear(parent, base, key)
        self.whiteouts.discard(key)
        if e.kind == SYMLINK:
            if self.owners:
                os.chown(base, e.uid, e.gid, dir_fd=parent, follow_symlinks=False)
        else:
            self._own_and_mode(parent, base, e)
        if e.xattrs:
            self._set_xattrs(f"/proc/self/fd/{parent}/{os.fsdecode(base)}", e.xattrs)
        os.utime(base, ns=(e.atime_ns, e.mtime_ns), dir_fd=parent, follow_symlinks=False)
        self.files.add(key)

    def _whiteout(self, parent_key: bytes, base: bytes) -> None:
        parent = self._dir(parent_key)
        if base == OPAQUE:
            os.setxattr(parent, OVERLAY_OPAQUE, b"y")
            return
        if base.startswith(OPAQUE[:8]):
            return  # other `.wh..wh.` names are AUFS bookkeeping: ignored, as Docker does
        victim = base[len(WHITEOUT) :]
        if victim in (b"", b".", b".."):
            raise self.unsafe("whiteout of an invalid name")
        key = parent_key + b"/" + victim if parent_key else victim
        try:
            st = os.stat(victim, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            os.mknod(victim, stat.S_IFCHR, os.makedev(0, 0), dir_fd=parent)
            self.whiteouts.add(key)
            return
        # Whiteouts only hide lower layers: what this layer put at that name stays, and a
        # directory it made must hide the lower directory's content.
        if stat.S_ISDIR(st.st_mode):
            fd = os.open(victim, _O_DIR, dir_fd=parent)
            try:
                os.setxattr(fd, OVERLAY_OPAQUE, b"y")
            finally:
                os.close(fd)

    # metadata

    def _own_and_mode(self, parent: int, base: bytes | None, e: Entry) -> None:
        """chown then chmod (chown clears setuid/setgid); by descriptor when base is None."""
        if base is None:
            if self.owners:
                os.fchown(parent, e.uid, e.gid)
            os.fchmod(parent, e.mode)
            return
        if self.owners:
            os.chown(base, e.uid, e.gid, dir_fd=parent, follow_symlinks=False)
        # Not a symlink: this module just created it, and no other writer touches the tree.
        os.chmod(base, e.mode, dir_fd=parent)

    @staticmethod
    def _set_xattrs(target: int | str, xattrs: dict[bytes, bytes]) -> None:
        """On a descriptor, or on a /proc/self/fd/N/NAME path (never followed)."""
        for name, value in xattrs.items():
            try:
                if isinstance(target, int):
                    os.setxattr(target, name, value)
                else:
                    os.setxattr(target, name, value, follow_symlinks=False)
            except OSError as exc:
                # As Docker: a filesystem without (this kind of) xattrs is not an error.
                if exc.errno not in (errno.ENOTSUP, errno.EPERM):
                    raise

    def _fix_dir_times(self) -> None:
        """Directory mtimes last: creating their children changed them."""
        for key, atime_ns, mtime_ns in reversed(self.dir_times):
            if len(self.dirs) > DIR_CACHE:
                self._forget_dirs()
            if not key:
                os.utime(self.root_fd, ns=(atime_ns, mtime_ns))
                continue
            parent_key, _, base = key.rpartition(b"/")
            with contextlib.suppress(UnsafeLayer, LayerError, OSError):
                # Gone or replaced by a later entry: nothing to fix.
                parent = self._dir(parent_key, create=False)
                os.utime(base, ns=(atime_ns, mtime_ns), dir_fd=parent, follow_symlinks=False)

    def close(self) -> None:
        self._forget_dirs()


# -- entry point ----------------------------------------------------------------------------


def unpack(
    source: IO[bytes] | str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    media_type: str | None = None,
    layer: str = "",
    policy: UnpackPolicy | None = None,
    file_digests: dict[bytes, str] | None = None,
) -> Unpacked:
    """Unpack one layer from `source` (a binary file, or its path) into `target`.

    `target` must be missing or an empty directory. `media_type` is the layer's (it picks
    the decompressor when the magic bytes do not), `layer` names it in errors (its digest).
    With `file_digests`, the sha256 of every regular file's content is put there by its
    path (normalised, relative to `target`) as the file is written: a build context is
    then hashed in the same pass that unpacks it. Returns the diff_id and sizes. Raises UnsafeLayer, LayerError or CorruptLayer, leaving
    `target` as it was (missing, or empty with its former attributes).
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            return unpack(f, target, media_type=media_type, layer=layer, policy=policy,
                          file_digests=file_digests)
    policy = policy or UnpackPolicy.from_env()
    target = Path(target)
    created = False
    try:
        os.mkdir(target, 0o755)
        created = True
    except FileExistsError:
        pass
    root_fd = os.open(target, _O_DIR)
    saved = None
    if not created:
        if os.listdir(root_fd):
            os.close(root_fd)
            raise InvalidArgument(f"cannot unpack layer {layer} into {target}: not empty")
        saved = (os.fstat(root_fd), set(os.listxattr(root_fd)))
    unpacker = _Unpacker(root_fd, layer, policy, file_digests)
    try:
        result = run_unpacker(unpacker, source, layer, policy, media_type)
    except BaseException:
        unpacker.close()
        _restore(target, root_fd, created, saved)
        raise
    unpacker.close()
    os.close(root_fd)
    return result


def run_unpacker(
    unpacker: _Unpacker,
    source: IO[bytes],
    layer: str,
    policy: UnpackPolicy,
    media_type: str | None = None,
) -> Unpacked:
    """Read `source` through `unpacker`; the archive's faults as this module's errors."""
    try:
        stream, compression = open_stream(source, media_type, policy.max_bytes)
        unpacker.run(stream)
    except TarFormatError as exc:
        name = _show(exc.name) if exc.name is not None else None
        if exc.unsafe:
            raise UnsafeLayer(layer or "(stream)", name or "", exc.reason) from None
        raise CorruptLayer(layer, exc.reason, name) from None
    except Bomb:
        raise UnsafeLayer(
            layer or "(stream)",
            _show(unpacker.entry or b"(stream)"),
            f"uncompressed layer larger than {policy.max_bytes} bytes (limit)",
        ) from None
    except Truncated as exc:
        raise unpacker.corrupt(f"truncated: {exc}") from None
    except zlib.error as exc:
        raise unpacker.corrupt(f"bad gzip data ({exc})") from None
    except Exception as exc:
        if type(exc).__name__ == "ZstdError":
            raise unpacker.corrupt(f"bad zstd data ({exc})") from None
        raise
    return Unpacked(stream.digest(), unpacker.size, stream.total, unpacker.count, compression)


def _restore(
    target: Path, root_fd: int, created: bool, saved: tuple[os.stat_result, set[str]] | None
) -> None:
    """Put the target back as it was: removed if this call made it, else emptied."""
    try:
        if created or saved is None:
            shutil.rmtree(target, ignore_errors=True)
            return
        for name in os.listdir(root_fd):
            st = os.stat(name, dir_fd=root_fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(name, dir_fd=root_fd, ignore_errors=True)
            else:
                os.unlink(name, dir_fd=root_fd)
        before, xattrs = saved
        for name in set(os.listxattr(root_fd)) - xattrs:
            with contextlib.suppress(OSError):
                os.removexattr(root_fd, name)
        with contextlib.suppress(OSError):
            os.fchown(root_fd, before.st_uid, before.st_gid)
        os.fchmod(root_fd, stat.S_IMODE(before.st_mode))
        os.utime(root_fd, ns=(before.st_atime_ns, before.st_mtime_ns))
    finally:
        os.close(root_fd)
