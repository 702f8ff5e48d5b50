"""The one pass over an image archive (tar, compressed tar, or directory) that `load` makes.

Small metadata files (`manifest.json`, `index.json`, `oci-layout`, `repositories`) are kept
in memory; every other file is streamed straight into the content store, with the digest
its name promises when it is `blobs/<alg>/<hex>` or `<hex>.json`, and the diff_id of
compressed layers is computed on the way. Links are noted and followed when metadata names
a path. Member paths that leave the archive are refused.
"""

from __future__ import annotations

import gzip
import io
import json
import lzma
import os
import posixpath
import re
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from portside.errors import DigestMismatch, InvalidDigest, PortsideError, SizeMismatch
from portside.oci.model import MAX_MANIFEST_BYTES, Descriptor, ImageConfig
from portside.store.archive_common import MAGIC_LEN, DiffHasher, InvalidArchive, Progress, sniff
from portside.store.content import CHUNK
from portside.store.images import ImageStore

_METADATA = frozenset({"manifest.json", "index.json", "oci-layout", "repositories"})
_LEGACY_METADATA = re.compile(r"[^/]+/(json|VERSION)")
_BLOB_PATH = re.compile(r"blobs/(sha256|sha512)/([a-f0-9]+)")
_CONFIG_PATH = re.compile(r"([a-f0-9]{64})\.json")
_MAX_LINK_HOPS = 16
_MAX_METADATA_TOTAL = 64 << 20


@dataclass
class Blob:
    digest: str
    size: int
    compression: str | None = None  # None: not known yet (the blob was already in the store)
    diff_id: str | None = None  # digest of the uncompressed content, when compressed


class _Prefixed(io.RawIOBase):
    """A stream with bytes already read from its start put back in front."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


# Not in typeshed's tarfile, but part of the module since Python 3.2.
_EMPTY_HEADER: type[Exception] = tarfile.EmptyHeaderError  # type: ignore[attr-defined]
_TRUNCATED_HEADER: type[Exception] = tarfile.TruncatedHeaderError  # type: ignore[attr-defined]
_INVALID_HEADER: type[Exception] = tarfile.InvalidHeaderError  # type: ignore[attr-defined]


class _StrictTarInfo(tarfile.TarInfo):
    """Header parsing that refuses what tarfile quietly takes for the end of the archive.

    tarfile stops without a word at a missing, short or corrupt header after the first
    member; only a zero block is a real end-of-archive marker.
    """

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> Any:
        try:
            return super().fromtarfile(tarfile_)
        except (_EMPTY_HEADER, _TRUNCATED_HEADER):
            raise tarfile.ReadError("archive ends before its end-of-archive marker") from None
        except _INVALID_HEADER as exc:
            raise tarfile.ReadError(f"bad member header at byte {tarfile_.offset}: {exc}") from None


def _decompressed(raw: IO[bytes], compression: str) -> Any:
    if compression == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if compression == "xz":
        return lzma.LZMAFile(raw)
    if compression == "bzip2":
        import bz2

        return bz2.BZ2File(raw)
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    return raw


def _member_name(where: str, name: str) -> str:
    """A member's path relative to the archive root; refuses paths that leave it."""
    parts = name.split("/")
    if name.startswith("/") or ".." in parts or "\x00" in name:
        raise InvalidArchive(where, f"refusing member {name!r}: its path leaves the archive")
    return posixpath.normpath(name).lstrip("/") if name not in ("", ".") else "."


class Collector:
    """The one pass over an archive: metadata in memory, blobs into the store, links noted."""

    def __init__(self, store: ImageStore, where: str, progress: Progress | None = None) -> None:
        self.store = store
        self.where = where
        self.progress = progress
        self.meta: dict[str, bytes] = {}
        self.files: dict[str, Blob] = {}
        self.links: dict[str, str] = {}
        self.meta_bytes = 0
        self.written: set[str] = set()  # digests this load put in the store

    # -- reading --

    def read_stream(self, stream: IO[bytes]) -> None:
        head = stream.read(MAGIC_LEN)
        if not head:
            raise InvalidArchive(self.where, "empty input: expected a tar archive")
        compression = sniff(head)
        raw = io.BufferedReader(_Prefixed(head, stream), CHUNK)
        try:
            with (
                _decompressed(raw, compression) as plain,
                tarfile.open(fileobj=plain, mode="r|", tarinfo=_StrictTarInfo) as tar,
            ):
                for member in tar:
                    self._add_member(tar, member)
        except PortsideError:
            raise
        except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile) as exc:
            raise InvalidArchive(self.where, f"corrupt or truncated archive ({exc})") from None
        except Exception as exc:
            if type(exc).__module__.startswith("zstandard"):
                raise InvalidArchive(self.where, f"corrupt zstd archive ({exc})") from None
            raise

    def _add_member(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        name = _member_name(self.where, member.name)
        if member.isdir():
            return
        if member.issym() or member.islnk():
            base = posixpath.dirname(name) if member.issym() else ""
            if member.linkname.startswith("/"):
                raise InvalidArchive(
                    self.where, f"refusing link {name!r} -> {member.linkname!r}: absolute target"
                )
            target = posixpath.normpath(posixpath.join(base, member.linkname))
            if target == ".." or target.startswith("../"):
                raise InvalidArchive(
                    self.where,
                    f"refusing link {name!r} -> {member.linkname!r}: it leads out of the archive",
                )
            self.links[name] = target
            return
        if not member.isfile():
            raise InvalidArchive(self.where, f"refusing member {name!r}: not a regular file")
        fileobj = tar.extractfile(member)
        assert fileobj is not None
        self._add_file(name, fileobj, member.size)

    def read_dir(self, path: Path) -> None:
        # Only a layout is read file by file: never sweep some other tree into the store.
        if not (path / "index.json").is_file() and not (path / "manifest.json").is_file():
            raise InvalidArchive(
                self.where, "not an image layout: the directory has no index.json or manifest.json"
            )
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            for entry in sorted(
                filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
            ):
                full = Path(dirpath, entry)
                name = full.relative_to(path).as_posix()
                if full.is_symlink():
                    target = os.readlink(full)
                    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
                    if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
                        raise InvalidArchive(
                            self.where,
                            f"refusing link {name!r} -> {target!r}: it leads out of the layout",
                        )
                    self.links[name] = resolved
                    continue
                if not full.is_file():
                    continue
                with open(full, "rb") as f:
                    self._add_file(name, f, full.stat().st_size)

    def _add_file(self, name: str, fileobj: IO[bytes], size: int) -> None:
        if name in _METADATA or _LEGACY_METADATA.fullmatch(name):
            if size > MAX_MANIFEST_BYTES:
                raise InvalidArchive(
                    self.where, f"{name} is larger than {MAX_MANIFEST_BYTES} bytes"
                )
            self.meta_bytes += size
            if self.meta_bytes > _MAX_METADATA_TOTAL:
                raise InvalidArchive(self.where, "too much metadata (legacy json files)")
            self.meta[name] = fileobj.read()
            return
        expected = None
        if m := _BLOB_PATH.fullmatch(name):
            expected = f"{m.group(1)}:{m.group(2)}"
        elif m := _CONFIG_PATH.fullmatch(name):
            expected = f"sha256:{m.group(1)}"
        content = self.store.content
        try:
            if expected and content.exists(expected):
                # Already stored (and verified when it was): no need to copy it again.
                self.files[name] = Blob(expected, content.size(expected))
                if self.progress:
                    self.progress(name, size, size)
                return
            hasher = DiffHasher()

            def chunks() -> Any:
                done = 0
                for chunk in iter(lambda: fileobj.read(CHUNK), b""):
                    hasher.update(chunk)
                    done += len(chunk)
                    if self.progress:
                        self.progress(name, done, size)
                    yield chunk

            digest = content.ingest(chunks(), expected, size)
        except (DigestMismatch, SizeMismatch, InvalidDigest) as exc:
            raise InvalidArchive(self.where, f"member {name}: {exc}") from None
        self.written.add(digest)
        try:
            diff_id = hasher.finish()
        except ValueError as exc:
            diff_id = None
            hasher.compression = f"corrupt: {exc}"
        self.files[name] = Blob(digest, size, hasher.compression, diff_id)

    # -- resolving --

    def resolve(self, name: str, referrer: str) -> Blob:
        """The blob stored for an archive path, following links; refuses absent files."""
        path = _member_name(self.where, name)
        for _ in range(_MAX_LINK_HOPS):
            if path in self.files:
                return self.files[path]
            if path not in self.links:
                raise InvalidArchive(
                    self.where, f"{referrer} names {name!r}, which is not in the archive"
                )
            path = self.links[path]
        raise InvalidArchive(self.where, f"{referrer} names {name!r}: too many links")

    def blob(self, desc: Descriptor, referrer: str) -> Blob:
        """The blob of a descriptor in an OCI layout, with its size checked."""
        algorithm, _, hexpart = desc.digest.partition(":")
        blob = self.resolve(f"blobs/{algorithm}/{hexpart}", referrer)
        if blob.size != desc.size:
            raise InvalidArchive(
                self.where, f"{referrer}: blob {desc.digest} is {blob.size} bytes, not {desc.size}"
            )
        return blob

    def compression(self, blob: Blob) -> str:
        if blob.compression is None:
            with self.store.content.open(blob.digest) as f:
                blob.compression = sniff(f.read(MAGIC_LEN))
        return blob.compression

    def diff_id(self, blob: Blob, referrer: str) -> str:
        """The digest of a layer's uncompressed tar (computed from the store if not yet known)."""
        compression = self.compression(blob)
        if compression.startswith("corrupt"):
            raise InvalidArchive(self.where, f"{referrer}: {compression.removeprefix('corrupt: ')}")
        if compression == "":
            return blob.digest
        if compression not in ("gzip", "zstd"):
            raise InvalidArchive(
                self.where, f"{referrer}: unsupported layer compression {compression}"
            )
        if blob.diff_id is None:
            hasher = DiffHasher()
            with self.store.content.open(blob.digest) as f:
                for chunk in iter(lambda: f.read(CHUNK), b""):
                    hasher.update(chunk)
            try:
                blob.diff_id = hasher.finish()
            except ValueError as exc:
                raise InvalidArchive(self.where, f"{referrer}: {exc}") from None
        assert blob.diff_id is not None
        return blob.diff_id

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.meta[name])
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidArchive(self.where, f"{name} is not valid JSON ({exc})") from None

    def read_blob(self, blob: Blob) -> bytes:
        if blob.size > MAX_MANIFEST_BYTES:
            raise InvalidArchive(self.where, f"document {blob.digest} is too large")
        return self.store.content.read(blob.digest)

    def check_layers(self, config: ImageConfig, layers: list[tuple[Blob, str]], where: str) -> None:
        """Every layer's uncompressed digest must be the config's diff_id at its position."""
        if len(config.diff_ids) != len(layers):
            raise InvalidArchive(
                self.where,
                f"{where}: {len(layers)} layers but the config lists {len(config.diff_ids)} diff_ids",
            )
        for (blob, referrer), expected in zip(layers, config.diff_ids, strict=True):
            actual = self.diff_id(blob, referrer)
            if actual != expected:
                raise InvalidArchive(
                    self.where,
                    f"{referrer}: uncompressed content is {actual}, the config says {expected}",
                )
