"""Read a layer as a stream of tar entries: decompress, hash and parse in one pass.

The compressed blob is read in chunks and decompressed with bounded output (gzip: zlib
with `max_length`; zstd: a stream reader), so memory stays small whatever the layer
expands to. Every uncompressed byte is hashed (the layer's diff_id) and counted against a
limit. Headers are parsed here rather than by `tarfile`, to control every allocation and
every error: ustar, GNU (long names and link targets, base-256 numbers) and pax (path,
linkpath, size, uid, gid, mtime, atime, xattrs). Nothing here touches the filesystem: the
caller (portside.store.unpack) decides what an entry becomes on disk.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, cast
from urllib.parse import unquote_to_bytes

from portside.oci import mediatypes as mt

CHUNK = 1 << 20  # bytes read from the decompressor (and so written to files) at a time
GZIP_INPUT = 1 << 18  # compressed bytes fed to zlib at a time (bounds the unconsumed tail)
BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
MAX_META = 1 << 20  # largest pax header or GNU long name accepted
MAX_TIME = 1 << 34  # seconds; beyond year 2500, and what fits a 64-bit nanosecond count
MAX_ID = (1 << 32) - 2  # (uid_t)-1 means "unchanged" to chown

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

# Entry kinds (tar typeflags) this reader hands out; every other kind is an error.
REGULAR = (b"0", b"\0", b"7")
HARDLINK, SYMLINK, CHAR, BLOCKDEV, DIRECTORY, FIFO = b"1", b"2", b"3", b"4", b"5", b"6"
SUPPORTED = frozenset((*REGULAR, HARDLINK, SYMLINK, CHAR, BLOCKDEV, DIRECTORY, FIFO))

_MAX_NS = MAX_TIME * 1_000_000_000
_CHECKSUM_U = struct.Struct("148B8x356B")
_CHECKSUM_S = struct.Struct("148b8x356b")


class Bomb(Exception):
    """The uncompressed stream goes past its limit."""


class Truncated(Exception):
    """The stream ends before the archive does."""


class TarFormatError(Exception):
    """A header is invalid (`unsafe` when it is an attack rather than damage)."""

    def __init__(self, reason: str, name: bytes | None, unsafe: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.name = name
        self.unsafe = unsafe


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
                    raise Truncated("the gzip stream is truncated")
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


def sniff(head: bytes, media_type: str | None) -> str:
    """The compression: the media type says, unless the magic bytes clearly disagree.

    Mislabelled layers exist (uncompressed tars announced as gzip by older tools), so a
    known magic number wins, and a declared compression over a plain ustar header loses.
    """
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    declared = mt.LAYERS.get(media_type or "", "")
    if (
        declared
        and len(head) >= BLOCK
        and (head[257:262] == b"ustar" or head[:BLOCK] == ZERO_BLOCK)
    ):
        return ""
    return declared


def open_stream(source: IO[bytes], media_type: str | None, limit: int) -> tuple[Stream, str]:
    """The uncompressed tar stream of a layer blob, and the compression found."""
    head = source.read(CHUNK)
    compression = sniff(head, media_type)
    prefixed = _Prefixed(head, source)
    read: Callable[[int], bytes] = prefixed.read
    if compression == "gzip":
        read = _Gunzip(prefixed).read
    elif compression == "zstd":
        import zstandard

        # Its reader cannot report a truncated frame; the end-of-archive check catches it.
        read = (
            zstandard.ZstdDecompressor()
            .stream_reader(
                cast(IO[bytes], prefixed), read_size=CHUNK, read_across_frames=True, closefd=False
            )
            .read
        )
    return Stream(read, limit), compression


# -- the uncompressed stream ----------------------------------------------------------------


class Stream:
    """The uncompressed tar: hashed and counted as it is read, handed out in blocks and spans."""

    __slots__ = ("_read", "_hash", "_limit", "_over", "buf", "pos", "total")

    def __init__(self, read: Callable[[int], bytes], limit: int) -> None:
        self._read = read
        self._hash = hashlib.sha256()
        self._limit = limit
        self._over = False
        self.buf = b""
        self.pos = 0
        self.total = 0  # bytes read from the decompressor so far

    def _fill(self) -> bool:
        # Past the limit, the stream is cut there; the bomb goes off only when the parser
        # wants the byte beyond it, so the error names the entry that crosses the limit.
        if self._over:
            raise Bomb()
        chunk = self._read(CHUNK)
        if not chunk:
            return False
        room = self._limit - self.total
        if len(chunk) > room:
            self._over = True
            chunk = chunk[:room]
            if not chunk:
                raise Bomb()
        self._hash.update(chunk)
        self.total += len(chunk)
        self.buf = self.buf[self.pos :] + chunk if self.pos < len(self.buf) else chunk
        self.pos = 0
        return True

    @property
    def offset(self) -> int:
        """Bytes consumed so far."""
        return self.total - (len(self.buf) - self.pos)

    def block(self) -> bytes | None:
        """The next 512-byte block, or None at a clean end of the stream."""
        end = self.pos + BLOCK
        if end > len(self.buf):
            while len(self.buf) - self.pos < BLOCK:
                if not self._fill():
                    if self.pos == len(self.buf):
                        return None
                    raise Truncated("the archive ends inside a header")
            end = self.pos + BLOCK
        block = self.buf[self.pos : end]
        self.pos = end
        return block

    def read(self, n: int) -> bytes:
        """Exactly n bytes (n is small: extended headers), then skip to the next block."""
        while len(self.buf) - self.pos < n:
            if not self._fill():
                raise Truncated("the archive ends inside an extended header")
        data = self.buf[self.pos : self.pos + n]
        self.pos += n
        self.skip(-n % BLOCK)
        return data

    def copy(self, write: Callable[[memoryview], int], n: int) -> None:
        """Hand the next n bytes to `write` (os.write on a descriptor, say), straight from
        the decompressor's chunks; `write` may take less than it is given."""
        while n:
            avail = len(self.buf) - self.pos
            if not avail:
                if not self._fill():
                    raise Truncated("the archive ends inside the file's data")
                continue
            k = min(avail, n)
            view = memoryview(self.buf)[self.pos : self.pos + k]
            done = write(view)
            while done < k:
                done += write(view[done:])
            self.pos += k
            n -= k

    def skip(self, n: int) -> None:
        while n:
            avail = len(self.buf) - self.pos
            if not avail:
                if not self._fill():
                    raise Truncated("the archive ends inside an entry's data")
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


# -- headers --------------------------------------------------------------------------------


@dataclass(slots=True)
class Entry:
    name: bytes  # as in the archive (pax path, GNU long name, ustar prefix/name)
    kind: bytes  # one of SUPPORTED
    mode: int  # permission bits, including setuid/setgid/sticky
    uid: int
    gid: int
    size: int  # bytes of data that follow (regular files only)
    mtime_ns: int
    atime_ns: int
    linkname: bytes = b""
    major: int = 0
    minor: int = 0
    xattrs: dict[bytes, bytes] = field(default_factory=dict)


def entries(stream: Stream, max_entries: int, eof_ends: bool = False) -> Iterator[Entry]:
    """The entries of the archive, up to its end-of-archive marker.

    The consumer may read a regular entry's data (`stream.copy`) before asking for the
    next entry; whatever it leaves unread, and the padding, is skipped. Raises Truncated
    when the stream ends before the marker, TarFormatError for invalid headers (unsafe
    for more than `max_entries` headers or oversized extended headers).

    With `eof_ends`, a stream that ends cleanly between entries or right after an entry's
    data (its padding and the marker missing) is complete, as Go's archive/tar reads it:
    the docker client sends build contexts like that (`docker build -f - .`). A stream
    that ends inside a header or an entry's data is still Truncated.
    """
    pax: dict[bytes, bytes] = {}
    long_name = long_link = b""
    count = 0
    while True:
        block = stream.block()
        if block is None:
            if eof_ends and not (pax or long_name or long_link):
                return
            raise Truncated("the archive ends without its end-of-archive marker")
        if block == ZERO_BLOCK:
            return
        count += 1
        if count > max_entries:
            raise TarFormatError(
                f"more than {max_entries} entries (limit)", _cstring(block[:100]), unsafe=True
            )
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
            raise TarFormatError(f"not a valid tar header ({exc})", _cstring(block[:100])) from None
        if kind in (b"x", b"g", b"L", b"K"):
            if size > MAX_META:
                raise TarFormatError(
                    f"extended header of {size} bytes (limit {MAX_META})",
                    _cstring(block[:100]),
                    unsafe=True,
                )
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
                raise TarFormatError(
                    f"bad extended header ({exc})", _cstring(block[:100])
                ) from None
            continue
        entry = _decode(block, kind, size, pax, long_name, long_link)
        pax, long_name, long_link = {}, b"", b""
        length = entry.size if entry.kind in REGULAR else 0  # other kinds carry no data
        data_end = stream.offset + length
        end = data_end + (-length % BLOCK)
        yield entry
        try:
            stream.skip(max(0, end - stream.offset))
        except Truncated:
            if eof_ends and stream.offset >= data_end:
                return  # only the padding is missing
            raise


def _decode(
    block: bytes,
    kind: bytes,
    size: int,
    pax: dict[bytes, bytes],
    long_name: bytes,
    long_link: bytes,
) -> Entry:
    name = long_name or _cstring(block[0:100])
    magic = block[257:263]
    if not long_name and magic == b"ustar\0":
        prefix = _cstring(block[345:500])
        if prefix:
            name = prefix + b"/" + name
    try:
        mode = _num(block[100:108]) & 0o7777
        uid = _num(block[108:116])
        gid = _num(block[116:124])
        mtime_ns = _num(block[136:148]) * 1_000_000_000
        major = minor = 0
        if kind in (CHAR, BLOCKDEV) and magic[:5] == b"ustar":
            major, minor = _num(block[329:337]), _num(block[337:345])
        linkname = long_link or (_cstring(block[157:257]) if kind in (HARDLINK, SYMLINK) else b"")
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
                raise TarFormatError("sparse files are not supported", name)
    except (ValueError, TypeError) as exc:
        raise TarFormatError(f"not a valid tar header ({exc})", pax.get(b"path", name)) from None
    if kind == b"\0" and name.endswith(b"/"):
        kind = DIRECTORY  # old tars mark directories with a trailing slash only
    if kind not in SUPPORTED:
        raise TarFormatError(f"unsupported tar entry type {kind!r}", name)
    if not (0 <= uid <= MAX_ID and 0 <= gid <= MAX_ID):
        raise TarFormatError(f"uid/gid {uid}/{gid} out of range", name)
    if not (0 <= major < 1 << 32 and 0 <= minor < 1 << 32):
        raise TarFormatError(f"device {major}:{minor} out of range", name)
    if atime_ns is None:
        atime_ns = mtime_ns
    if not (-_MAX_NS < mtime_ns < _MAX_NS and -_MAX_NS < atime_ns < _MAX_NS):
        raise TarFormatError("timestamp out of range", name)
    if pax and (b"\0" in name or b"\0" in linkname):  # header fields end at their NUL
        raise TarFormatError("NUL byte in a name", name)
    for xattr in xattrs:
        if not xattr or b"\0" in xattr:
            raise TarFormatError("bad xattr name", name)
    return Entry(
        name, kind, mode, uid, gid, size, mtime_ns, atime_ns, linkname, major, minor, xattrs
    )


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
