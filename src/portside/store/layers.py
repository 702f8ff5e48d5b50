"""Write layers: a directory tree (or a list of entries) streamed as a tar into the store.

One pass, no temporary tar: tar bytes are hashed (the layer's diff_id), compressed, and
written to a content-store writer, which hashes the compressed blob (its digest). Entries
come in a stable (byte-sorted) order, carry uid/gid/mode/mtime/xattrs, and keep hardlinks,
symlinks, devices and FIFOs; with an `epoch` (SOURCE_DATE_EPOCH) mtimes are clamped, so the
same tree always gives the same digest. With `whiteouts="overlay"`, overlayfs whiteouts
(0/0 character devices, directories marked `trusted.overlay.opaque=y`) become OCI `.wh.`
entries (image-spec layer.md, "Whiteouts"), which is what committing a container needs.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import queue
import stat
import tarfile
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portside.errors import InvalidArgument
from portside.oci import mediatypes as mt
from portside.store.content import ContentStore

GZIP_LEVEL = 6  # level 1 is 2x faster but 7% larger on a Debian tree; layers are pulled often
# ISA-L's level 3 gives zlib 6's size at about three times its speed (and lets go of the GIL).
ISAL_LEVEL = 3
ZSTD_LEVEL = 3
FLUSH_AT = 1 << 20
COPY_BUFSIZE = 1 << 20

MEDIA_TYPES = {"": mt.OCI_LAYER, "gzip": mt.OCI_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD}
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OVERLAY_OPAQUE = "trusted.overlay.opaque"

# A layer entry: its header, and its content (bytes, or a file to read) for regular files.
Entry = tuple[tarfile.TarInfo, "bytes | Path | None"]


@dataclass(frozen=True)
class LayerResult:
    """What a manifest (digest, size, media_type) and a config (diff_id) say of a layer."""

    digest: str
    size: int
    diff_id: str
    media_type: str
    uncompressed_size: int

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


class _Compressor:
    """gzip (ISA-L when installed, else zlib; reproducible header: no name, mtime 0), zstd,
    or pass-through."""

    def __init__(self, compression: str) -> None:
        self._z: Any = None
        if compression == "gzip":
            self._z = _gzip_compressor()
        elif compression == "zstd":
            import zstandard

            self._z = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compressobj()
        elif compression != "":
            raise InvalidArgument(f"unknown layer compression {compression!r} (gzip, zstd or none)")

    def compress(self, data: bytes) -> bytes:
        return self._z.compress(data) if self._z else data

    def flush(self) -> bytes:
        return self._z.flush() if self._z else b""


def _gzip_compressor() -> Any:
    try:
        from isal import isal_zlib
    except ImportError:  # pragma: no cover - isal is a dependency; zlib is the fallback
        return zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # 31: gzip wrapper
    return isal_zlib.compressobj(ISAL_LEVEL, isal_zlib.DEFLATED, 31)


class _Sink:
    """The file object tarfile writes to: hash the tar, compress it, feed the blob writer.

    Past the first full chunk, compressing and writing the blob move to a thread of their
    own, so they overlap with reading files and hashing the tar (zlib, ISA-L, zstd and
    hashlib let go of the GIL); a bounded queue keeps memory to a few chunks.
    """

    def __init__(self, out: Any, compressor: _Compressor) -> None:
        self._out = out
        self._compressor = compressor
        self._buffer = bytearray()
        self.tar_hash = hashlib.sha256()
        self.position = 0
        self._queue: queue.Queue[bytes | None] | None = None
        self._worker: threading.Thread | None = None
        self._failure: BaseException | None = None

    def write(self, data: bytes) -> int:
        self._buffer += data
        self.position += len(data)
        if len(self._buffer) >= FLUSH_AT:
            self._drain()
        return len(data)

    def tell(self) -> int:
        return self.position

    def _drain(self) -> None:
        chunk = bytes(self._buffer)
        self._buffer.clear()
        self.tar_hash.update(chunk)
        if not chunk:
            return
        if self._worker is None and len(chunk) >= FLUSH_AT:
            self._queue = queue.Queue(4)
            self._worker = threading.Thread(target=self._work, name="layer-compress", daemon=True)
            self._worker.start()
        if self._queue is not None:
            if self._failure is not None:
                raise self._failure
            self._queue.put(chunk)
        elif out := self._compressor.compress(chunk):
            self._out.write(out)

    def _work(self) -> None:
        assert self._queue is not None
        while (chunk := self._queue.get()) is not None:
            if self._failure is not None:
                continue  # keep taking chunks so the writer never blocks on a full queue
            try:
                if out := self._compressor.compress(chunk):
                    self._out.write(out)
            except BaseException as exc:  # raised again in the writer's thread
                self._failure = exc

    def _join(self) -> None:
        if self._worker is not None and self._queue is not None:
            self._queue.put(None)  # the end
            self._worker.join()
            self._worker = self._queue = None

    def close(self) -> None:
        self._drain()
        self._join()
        if self._failure is not None:
            raise self._failure
        if tail := self._compressor.flush():
            self._out.write(tail)

    def abandon(self) -> None:
        """A failed layer: the worker stops before the blob writer is thrown away."""
        self._join()


def write_entries(
    content: ContentStore, entries: Iterable[Entry], compression: str = "gzip"
) -> LayerResult:
    """Stream `entries` as a PAX tar into the store; nothing is kept if anything fails."""
    compressor = _Compressor(compression)
    with content.writer() as blob:
        sink = _Sink(blob, compressor)
        try:
            with tarfile.open(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
                tar.copybufsize = COPY_BUFSIZE
                for info, source in entries:
                    _add(tar, info, source)
            sink.close()
        except BaseException:
            sink.abandon()
            raise
        digest = blob.commit()
        return LayerResult(
            digest=digest,
            size=blob.size,
            diff_id="sha256:" + sink.tar_hash.hexdigest(),
            media_type=MEDIA_TYPES[compression],
            uncompressed_size=sink.position,
        )


def _add(tar: tarfile.TarFile, info: tarfile.TarInfo, source: bytes | Path | None) -> None:
    if info.isreg() and isinstance(source, bytes):
        info.size = len(source)
        tar.addfile(info, io.BytesIO(source))
    elif info.isreg() and source is not None:
        with open(source, "rb") as f:
            info.size = os.fstat(f.fileno()).st_size
            tar.addfile(info, f)
    else:
        if info.isreg():
            info.size = 0
        tar.addfile(info)


def write_layer(
    content: ContentStore,
    directory: Path,
    compression: str = "gzip",
    epoch: int | None = None,
    whiteouts: str = "overlay",
) -> LayerResult:
    """Write the tree under `directory` (not the directory entry itself) as one layer."""
    if whiteouts not in ("overlay", "none"):
        raise InvalidArgument(f"unknown whiteout mode {whiteouts!r} (overlay or none)")
    directory = Path(directory)
    if not directory.is_dir():
        raise InvalidArgument(f"{directory}: not a directory")
    return write_entries(
        content, walk(directory, epoch=epoch, overlay=whiteouts == "overlay"), compression
    )


def walk(directory: Path, epoch: int | None = None, overlay: bool = False) -> Iterator[Entry]:
    """The entries of a tree in stable order: each directory, then its children by name."""
    seen: dict[tuple[int, int], str] = {}  # (dev, ino) of multiply-linked files -> first name
    yield from _walk_dir(Path(directory), "", epoch, overlay, seen)


def _walk_dir(
    top: Path, prefix: str, epoch: int | None, overlay: bool, seen: dict[tuple[int, int], str]
) -> Iterator[Entry]:
    with os.scandir(top / prefix if prefix else top) as it:
        names = sorted((e.name for e in it), key=os.fsencode)
    for name in names:
        rel = f"{prefix}{name}"
        path = top / rel
        st = os.lstat(path)
        info = _tarinfo(path, rel, st, epoch)
        if info is None:
            continue  # sockets have no tar representation
        xattrs = _xattrs(path)
        opaque = False
        if overlay:
            opaque = xattrs.get(OVERLAY_OPAQUE) == "y"
            xattrs = {k: v for k, v in xattrs.items() if not k.startswith("trusted.overlay.")}
            if info.ischr() and info.devmajor == 0 and info.devminor == 0:
                info = _whiteout(info, f"{prefix}{WHITEOUT_PREFIX}{name}", 0o600)
                yield info, None
                continue
        if xattrs:
            info.pax_headers = {"SCHILY.xattr." + k: v for k, v in xattrs.items()}
        if info.isreg() and st.st_nlink > 1:
            first = seen.setdefault((st.st_dev, st.st_ino), rel)
            if first != rel:
                info.type = tarfile.LNKTYPE
                info.linkname = first
                info.size = 0
                yield info, None
                continue
        if info.isdir():
            yield info, None
            if overlay and opaque:
                marker = _whiteout(info, f"{rel}/{OPAQUE_MARKER}", stat.S_IMODE(st.st_mode))
                marker.pax_headers = {}
                yield marker, None
            yield from _walk_dir(top, f"{rel}/", epoch, overlay, seen)
        else:
            yield info, (path if info.isreg() else None)


def _tarinfo(
    path: Path, name: str, st: os.stat_result, epoch: int | None
) -> tarfile.TarInfo | None:
    info = tarfile.TarInfo(name)
    mode = st.st_mode
    info.mode = stat.S_IMODE(mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""  # host user names are not the image's; numbers are what count
    mtime = int(st.st_mtime)
    info.mtime = min(mtime, epoch) if epoch is not None else mtime
    if stat.S_ISREG(mode):
        info.type, info.size = tarfile.REGTYPE, st.st_size
    elif stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    else:
        return None
    return info


def _whiteout(like: tarfile.TarInfo, name: str, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode = tarfile.REGTYPE, 0, mode
    info.uid, info.gid, info.mtime = like.uid, like.gid, like.mtime
    info.uname = info.gname = ""
    return info


def _xattrs(path: Path) -> dict[str, str]:
    """Extended attributes (not followed through symlinks), values kept byte-exact."""
    out: dict[str, str] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for key in sorted(names):
        with contextlib.suppress(OSError):
            # tarfile writes such values back as the original bytes (hdrcharset=BINARY).
            value = os.getxattr(path, key, follow_symlinks=False)
            out[key] = value.decode("utf-8", "surrogateescape")
    return out
