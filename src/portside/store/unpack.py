"""Unpack one OCI layer into a directory: streaming, in one pass, safe against hostile layers.

The layer (a tar, plain, gzip or zstd) is decompressed and parsed as it is read, never held
whole in memory; the sha256 of the uncompressed stream (the layer's diff_id) is computed on
the way. Every entry is created by this module with `*at` system calls relative to a
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

import base64
import contextlib
import errno
import hashlib
import os
import shutil
import stat
import struct
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import unquote_to_bytes

from portside.errors import InvalidArgument, PortsideError, UnsafeLayer
from portside.oci import mediatypes as mt

CHUNK = 1 << 20  # bytes read from the decompressor and written to files at a time
GZIP_INPUT = 1 << 18  # compressed bytes fed to zlib at a time (bounds the unconsumed tail)
BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
MAX_META = 1 << 20  # largest PAX header or GNU long name accepted
MAX_TIME = 1 << 34  # seconds; beyond year 2500, and what fits a 64-bit nanosecond count
_MAX_NS = MAX_TIME * 1_000_000_000
MAX_ID = (1 << 32) - 2  # (uid_t)-1 means "unchanged" to chown
DIR_CACHE = 256  # open directory descriptors kept between entries

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

WHITEOUT = b".wh."
OPAQUE = b".wh..wh..opq"
OVERLAY_OPAQUE = b"trusted.overlay.opaque"
# Xattrs only portside may set: they steer overlayfs (opaque dirs, redirects, metacopy).
OVERLAY_XATTRS = (b"trusted.overlay.", b"user.overlay.")

_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_O_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_CHECKSUM_U = struct.Struct("148B8x356B")
_CHECKSUM_S = struct.Struct("148b8x356b")

_REGULAR = (b"0", b"\0", b"7")
_SUPPORTED = frozenset((*_REGULAR, b"1", b"2", b"3", b"4", b"5", b"6"))


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
    if not number.isdigit() or int(number) <= 0:
        raise InvalidArgument(f"{where}: {text!r} is not a positive size (like 64G or 1000000)")
    return int(number) * _UNITS[unit]


@dataclass(frozen=True)
class Unpacked:
    diff_id: str  # sha256 of the uncompressed tar stream
    size: int  # bytes of file content written
    tar_size: int  # bytes of the uncompressed tar stream
    entries: int
    compression: str  # "", "gzip" or "zstd": what the stream turned out to be


class _Bomb(Exception):
    pass


class _Truncated(Exception):
    pass


# -- decompression --------------------------------------------------------------------------


class _Prefixed:
    """A file whose first bytes were already read (to sniff the compression)."""

    def __init__(self, head: bytes, source: IO[bytes]) -> None:
        self._head = head
        self._source = source

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n < 0 or n >= len(self._head):
                head, self._head = self._head, b""
                return head
            head, self._head = self._head[:n], self._head[n:]
            return head
        return self._source.read(n)


class _Gunzip:
    """gzip members (RFC 1952), possibly several and zero-padded, with bounded output per read."""

    def __init__(self, source: _Prefixed) -> None:
        self._source = source
        self._zlib = zlib.decompressobj(31)
        self._pending = b""
        self._between = True  # before a member's first byte: a clean place to end
        self._members = 0

    def read(self, n: int) -> bytes:
        while True:
            z = self._zlib
            if z.unconsumed_tail:
                data = z.unconsumed_tail
            elif self._pending:
                data, self._pending = self._pending, b""
            else:
                data = self._source.read(GZIP_INPUT)
                if not data:
                    if self._between and self._members:
                        return b""
                    raise _Truncated("the gzip stream is truncated")
            if self._between:
                if self._members:
                    # Trailing zeros after the last member are allowed, as gzip(1) does.
                    data = data.lstrip(b"\0")
                    if not data:
                        continue
                self._between = False
            out = z.decompress(data, n)
            if z.eof:
                self._members += 1
                self._between = True
                self._pending = z.unused_data
                self._zlib = zlib.decompressobj(31)
            if out:
                return out


def _sniff(head: bytes, media_type: str | None) -> str:
    """The compression: the media type says, unless the magic bytes clearly disagree.

    Mislabelled layers exist (uncompressed tars announced as gzip by older tools), so a
    known magic number wins; without one, the media type decides, defaulting to plain tar.
    """
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    declared = mt.LAYERS.get(media_type or "", "")
    if declared and len(head) >= BLOCK and _looks_like_tar(head[:BLOCK]):
        return ""
    return declared


def _looks_like_tar(block: bytes) -> bool:
    return block[257:262] == b"ustar" or block == ZERO_BLOCK


def _reader(source: IO[bytes], media_type: str | None) -> tuple[Callable[[int], bytes], str]:
    head = source.read(CHUNK)
    compression = _sniff(head, media_type)
    prefixed = _Prefixed(head, source)
    if compression == "gzip":
        return _Gunzip(prefixed).read, compression
    if compression == "zstd":
        import zstandard

        stream = zstandard.ZstdDecompressor().stream_reader(
            cast(IO[bytes], prefixed), read_size=CHUNK, read_across_frames=True, closefd=False
        )
        return stream.read, compression
    return prefixed.read, compression


# -- the uncompressed stream ----------------------------------------------------------------


class _Stream:
    """The uncompressed tar: hashed and counted as it is read, handed out in blocks and spans."""

    __slots__ = ("_read", "_hash", "_limit", "_over", "buf", "pos", "total")

    def __init__(self, read: Callable[[int], bytes], limit: int) -> None:
        self._read = read
        self._hash = hashlib.sha256()
        self._limit = limit
        self._over = False
        self.buf = b""
        self.pos = 0
        self.total = 0

    def _fill(self) -> bool:
        # Past the limit, the stream is cut there; the bomb goes off only when the parser
        # wants the byte beyond it, so the error names the entry that crosses the limit.
        if self._over:
            raise _Bomb()
        chunk = self._read(CHUNK)
        if not chunk:
            return False
        room = self._limit - self.total
        if len(chunk) > room:
            self._over = True
            chunk = chunk[:room]
            if not chunk:
                raise _Bomb()
        self._hash.update(chunk)
        self.total += len(chunk)
        self.buf = self.buf[self.pos :] + chunk if self.pos < len(self.buf) else chunk
        self.pos = 0
        return True

    def block(self) -> bytes | None:
        """The next 512-byte block, or None at a clean end of the stream."""
        end = self.pos + BLOCK
        if end > len(self.buf):
            while len(self.buf) - self.pos < BLOCK:
                if not self._fill():
                    if self.pos == len(self.buf):
                        return None
                    raise _Truncated("the archive ends inside a header")
            end = self.pos + BLOCK
        block = self.buf[self.pos : end]
        self.pos = end
        return block

    def read(self, n: int) -> bytes:
        """Exactly n bytes (n is small: extended headers), then skip to the next block."""
        while len(self.buf) - self.pos < n:
            if not self._fill():
                raise _Truncated("the archive ends inside an extended header")
        data = self.buf[self.pos : self.pos + n]
        self.pos += n
        self.skip(-n % BLOCK)
        return data

    def copy(self, fd: int, n: int) -> None:
        """Write the next n bytes to fd, straight from the decompressor's chunks."""
        while n:
            avail = len(self.buf) - self.pos
            if not avail:
                if not self._fill():
                    raise _Truncated("the archive ends inside the file's data")
                continue
            k = min(avail, n)
            view = memoryview(self.buf)[self.pos : self.pos + k]
            done = os.write(fd, view)
            while done < k:
                done += os.write(fd, view[done:])
            self.pos += k
            n -= k

    def skip(self, n: int) -> None:
        while n:
            avail = len(self.buf) - self.pos
            if not avail:
                if not self._fill():
                    raise _Truncated("the archive ends inside an entry's data")
                continue
            k = min(avail, n)
            self.pos += k
            n -= k

    def drain(self) -> None:
        """Read to the end: the diff_id covers the padding after the end-of-archive marker."""
        self.pos = len(self.buf)
        while self._fill():
            self.pos = len(self.buf)

    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


# -- tar headers ----------------------------------------------------------------------------


def _num(field: bytes) -> int:
    """A numeric header field: octal text, or GNU base-256 when the high bit is set."""
    if field[0] & 0x80:
        value = int.from_bytes(field[1:], "big")
        return value - (1 << (8 * (len(field) - 1))) if field[0] == 0xFF else value
    try:  # the common case: digits padded with spaces and NULs
        return int(field.rstrip(b"\0 ") or b"0", 8)
    except ValueError:
        pass
    text = field.split(b"\0", 1)[0].strip(b" ")  # digits, a NUL, then junk
    if not text:
        return 0
    if not text.isdigit():
        raise ValueError(f"bad number {field!r}")
    return int(text, 8)  # ValueError for 8 and 9


def _cstring(field: bytes) -> bytes:
    return field.split(b"\0", 1)[0]


def _parse_pax(data: bytes, into: dict[bytes, bytes]) -> None:
    """Records `LEN KEY=VALUE\\n` (POSIX pax), values kept as bytes (xattrs are binary)."""
    pos, end = 0, len(data)
    while pos < end:
        if data[pos] == 0:  # some writers pad with NULs
            break
        space = data.find(b" ", pos, pos + 21)
        digits = data[pos:space]
        if space < 0 or not digits.isdigit():
            raise ValueError("bad pax record length")
        length = int(digits)
        if length <= len(digits) + 1 or pos + length > end or data[pos + length - 1] != 0x0A:
            raise ValueError("bad pax record")
        key, eq, value = data[space + 1 : pos + length - 1].partition(b"=")
        if not eq or not key:
            raise ValueError("bad pax record")
        into[key] = value
        pos += length


def _pax_int(value: bytes) -> int:
    if not value.isdigit():
        raise ValueError(f"bad pax number {value!r}")
    return int(value)


def _pax_time_ns(value: bytes) -> int:
    """A pax time ("1700000000.5", "-12") in nanoseconds."""
    sign = -1 if value.startswith(b"-") else 1
    whole, _, frac = value.lstrip(b"-").partition(b".")
    if not whole.isdigit() or (frac and not frac.isdigit()):
        raise ValueError(f"bad pax time {value!r}")
    return sign * (int(whole) * 1_000_000_000 + int((frac[:9] or b"0").ljust(9, b"0")))


@dataclass(slots=True)
class _Entry:
    name: bytes
    kind: bytes
    mode: int
    uid: int
    gid: int
    size: int
    mtime_ns: int
    atime_ns: int
    linkname: bytes
    major: int
    minor: int
    xattrs: dict[bytes, bytes]


def _umask() -> int:
    """The process umask, read without changing it (os.umask would, for other threads)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(b"Umask:"):
                return int(line.split()[1], 8)
    return 0o777  # unknown: always chmod


def _show(name: bytes) -> str:
    return name.decode("utf-8", "backslashreplace")


# -- the unpacker ---------------------------------------------------------------------------


class _Unpacker:
    def __init__(self, root_fd: int, layer: str, policy: UnpackPolicy) -> None:
        self.root_fd = root_fd
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
        self.entries = 0
        self.entry = b""

    # errors

    def unsafe(self, reason: str, name: bytes | None = None) -> UnsafeLayer:
        return UnsafeLayer(
            self.layer or "(stream)", _show(self.entry if name is None else name), reason
        )

    def corrupt(self, reason: str) -> CorruptLayer:
        return CorruptLayer(self.layer, reason, _show(self.entry) if self.entry else None)

    # the header loop

    def run(self, stream: _Stream) -> None:
        pax: dict[bytes, bytes] = {}
        long_name = long_link = b""
        policy = self.policy
        while True:
            block = stream.block()
            if block is None:
                raise _Truncated("the archive ends without its end-of-archive marker")
            if block == ZERO_BLOCK:
                break
            self.entries += 1
            if self.entries > policy.max_entries:
                self.entry = _cstring(block[:100])
                raise self.unsafe(f"more than {policy.max_entries} entries (limit)")
            try:
                stored = _num(block[148:156])
                if stored != 256 + sum(_CHECKSUM_U.unpack_from(block)) and (
                    stored != 256 + sum(_CHECKSUM_S.unpack_from(block))  # some old tars
                ):
                    raise ValueError("bad header checksum")
                kind = block[156:157]
                size = _num(block[124:136])
                if size < 0:
                    raise ValueError("negative size")
            except ValueError as exc:
                self.entry = _cstring(block[:100])
                raise self.corrupt(f"not a valid tar header ({exc})") from None
            if kind in (b"x", b"g", b"L", b"K"):
                if size > MAX_META:
                    self.entry = _cstring(block[:100])
                    raise self.unsafe(f"extended header of {size} bytes (limit {MAX_META})")
                data = stream.read(size)
                try:
                    if kind == b"x":
                        _parse_pax(data, pax)
                    elif kind == b"g":
                        _parse_pax(data, {})  # global headers: checked, then ignored (as Docker)
                    elif kind == b"L":
                        long_name = _cstring(data)
                    else:
                        long_link = _cstring(data)
                except ValueError as exc:
                    self.entry = _cstring(block[:100])
                    raise self.corrupt(f"bad extended header ({exc})") from None
                continue
            entry = self._entry(block, kind, size, pax, long_name, long_link)
            pax, long_name, long_link = {}, b"", b""
            self.entry = entry.name
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

    def _entry(
        self,
        block: bytes,
        kind: bytes,
        size: int,
        pax: dict[bytes, bytes],
        long_name: bytes,
        long_link: bytes,
    ) -> _Entry:
        name = long_name or _cstring(block[0:100])
        magic = block[257:263]
        if not long_name and magic == b"ustar\0":
            prefix = _cstring(block[345:500])
            if prefix:
                name = prefix + b"/" + name
        self.entry = pax.get(b"path", name)
        try:
            mode = _num(block[100:108]) & 0o7777
            uid = _num(block[108:116])
            gid = _num(block[116:124])
            mtime_ns = _num(block[136:148]) * 1_000_000_000
            major = minor = 0
            if kind in (b"3", b"4") and magic[:5] == b"ustar":
                major, minor = _num(block[329:337]), _num(block[337:345])
            linkname = long_link or (_cstring(block[157:257]) if kind in b"12" else b"")
            xattrs: dict[bytes, bytes] = {}
            atime_ns = None
            for key, value in pax.items():
                if key == b"path":
                    name = value
                elif key == b"linkpath":
                    linkname = value
                elif key == b"size":
                    size = _pax_int(value)
                elif key == b"uid":
                    uid = _pax_int(value)
                elif key == b"gid":
                    gid = _pax_int(value)
                elif key == b"mtime":
                    mtime_ns = _pax_time_ns(value)
                elif key == b"atime":
                    atime_ns = _pax_time_ns(value)
                elif key.startswith(b"SCHILY.xattr."):
                    xattrs[key[13:]] = value
                elif key.startswith(b"LIBARCHIVE.xattr."):
                    xattrs[unquote_to_bytes(key[17:])] = base64.b64decode(value + b"==")
                elif key.startswith(b"GNU.sparse."):
                    raise self.corrupt("sparse files are not supported")
        except (ValueError, TypeError) as exc:
            raise self.corrupt(f"not a valid tar header ({exc})") from None
        self.entry = name
        if kind == b"\0" and name.endswith(b"/"):
            kind = b"5"  # old tars mark directories with a trailing slash only
        if kind not in _SUPPORTED:
            raise self.corrupt(f"unsupported tar entry type {kind!r}")
        if not (0 <= uid <= MAX_ID and 0 <= gid <= MAX_ID):
            raise self.corrupt(f"uid/gid {uid}/{gid} out of range")
        if not (0 <= major < 1 << 32 and 0 <= minor < 1 << 32):
            raise self.corrupt(f"device {major}:{minor} out of range")
        if atime_ns is None:
            atime_ns = mtime_ns
        if not (-_MAX_NS < mtime_ns < _MAX_NS and -_MAX_NS < atime_ns < _MAX_NS):
            raise self.corrupt("timestamp out of range")
        if pax and (b"\0" in name or b"\0" in linkname):  # header fields end at their NUL
            raise self.corrupt("NUL byte in a name")
        for xattr in xattrs:
            if not xattr or b"\0" in xattr:
                raise self.corrupt("bad xattr name")
            if xattr.startswith(OVERLAY_XATTRS):
                raise self.unsafe(f"sets the overlayfs xattr {_show(xattr)!r}")
        return _Entry(
            name, kind, mode, uid, gid, size, mtime_ns, atime_ns, linkname, major, minor, xattrs
        )

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
        if comp.startswith(WHITEOUT):
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

    def _apply(self, e: _Entry, stream: _Stream) -> None:
        parts = self._parts(e.name)
        data = e.size if e.kind in _REGULAR else 0
        if not parts:
            if e.kind != b"5":
                raise self.unsafe("the root can only be a directory")
            self._own_and_mode(self.root_fd, None, e)
            self._set_xattrs(self.root_fd, e.xattrs)
            self.dir_times.append((b"", e.atime_ns, e.mtime_ns))
            return
        base = parts[-1]
        parent_key = b"/".join(parts[:-1])
        key = b"/".join(parts)
        if base.startswith(WHITEOUT):
            self._whiteout(parent_key, base)
            stream.skip(data + (-data % BLOCK))
            return
        kind = e.kind
        if kind in _REGULAR:
            self._regular(e, stream, self._dir(parent_key), base, key)
            return
        if kind == b"1":
            self._hardlink(e, self._dir(parent_key), base, key)
            return
        if kind == b"2":
            self._check_symlink(e.linkname, parts)
        if kind in (b"3", b"4"):
            if not self.policy.allow_devices:
                raise self.unsafe("device nodes are not allowed here (policy)")
            if e.mode & (stat.S_ISUID | stat.S_ISGID):
                raise self.unsafe("setuid/setgid bit on a device file")
        parent = self._dir(parent_key)
        if kind == b"5":
            self._directory(e, parent, base, key)
            return
        self._special(e, parent, base, key)

    def _regular(self, e: _Entry, stream: _Stream, parent: int, base: bytes, key: bytes) -> None:
        mode = e.mode & 0o777  # the descriptor is writable whatever the mode says
        try:
            fd = os.open(base, _O_FILE, mode, dir_fd=parent)
        except FileExistsError:
            self._clear(parent, base, key)
            fd = os.open(base, _O_FILE, mode, dir_fd=parent)
        try:
            if e.size:
                stream.copy(fd, e.size)
            if self.owners:
                os.fchown(fd, e.uid, e.gid)
            if e.mode & self.chmod_bits:
                os.fchmod(fd, e.mode)  # after chown, which clears setuid/setgid
            if e.xattrs:
                self._set_xattrs(fd, e.xattrs)  # after chown and write: they drop capabilities
            os.utime(fd, ns=(e.atime_ns, e.mtime_ns))
        finally:
            os.close(fd)
        stream.skip(-e.size % BLOCK)
        self.size += e.size
        self.files.add(key)

    def _hardlink(self, e: _Entry, parent: int, base: bytes, key: bytes) -> None:
        target = self._parts(e.linkname, "hardlink target")
        target_key = b"/".join(target)
        if target_key not in self.files:
            raise self.unsafe(
                f"hardlink target {_show(e.linkname)!r} is not a file extracted earlier"
                " from this layer"
            )
        if target_key == key:
            return
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

    def _directory(self, e: _Entry, parent: int, base: bytes, key: bytes) -> None:
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

    def _special(self, e: _Entry, parent: int, base: bytes, key: bytes) -> None:
        """Symlinks, devices and fifos: created by name in their parent's descriptor."""
        for attempt in (0, 1):
            try:
                if e.kind == b"2":
                    os.symlink(e.linkname, base, dir_fd=parent)
                elif e.kind == b"6":
                    os.mkfifo(base, 0o600, dir_fd=parent)
                else:
                    kind = stat.S_IFCHR if e.kind == b"3" else stat.S_IFBLK
                    os.mknod(base, kind | 0o600, os.makedev(e.major, e.minor), dir_fd=parent)
                break
            except FileExistsError:
                if attempt:
                    raise
                self._clear(parent, base, key)
        self.whiteouts.discard(key)
        if e.kind == b"2":
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

    def _own_and_mode(self, parent: int, base: bytes | None, e: _Entry) -> None:
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
) -> Unpacked:
    """Unpack one layer from `source` (a binary file, or its path) into `target`.

    `target` must be missing or an empty directory. `media_type` is the layer's (it picks
    the decompressor when the magic bytes do not), `layer` names it in errors (its digest).
    Returns the diff_id and sizes. Raises UnsafeLayer, LayerError or CorruptLayer, leaving
    `target` as it was (missing, or empty with its former attributes).
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            return unpack(f, target, media_type=media_type, layer=layer, policy=policy)
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
    unpacker = _Unpacker(root_fd, layer, policy)
    try:
        try:
            read, compression = _reader(source, media_type)
            stream = _Stream(read, policy.max_bytes)
            unpacker.run(stream)
        except _Bomb:
            raise UnsafeLayer(
                layer or "(stream)",
                _show(unpacker.entry or b"(stream)"),
                f"uncompressed layer larger than {policy.max_bytes} bytes (limit)",
            ) from None
        except _Truncated as exc:
            raise unpacker.corrupt(f"truncated: {exc}") from None
        except zlib.error as exc:
            raise unpacker.corrupt(f"bad gzip data ({exc})") from None
        except Exception as exc:
            if type(exc).__name__ == "ZstdError":
                raise unpacker.corrupt(f"bad zstd data ({exc})") from None
            raise
    except BaseException:
        unpacker.close()
        _restore(target, root_fd, created, saved)
        raise
    unpacker.close()
    os.close(root_fd)
    return Unpacked(stream.digest(), unpacker.size, stream.total, unpacker.entries, compression)


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
