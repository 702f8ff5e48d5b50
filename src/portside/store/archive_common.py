"""What both directions of image archives (`archive_load`, `archive_save`) need.

The archive error, compression sniffing, and a streaming hasher that computes a layer's
diff_id (the digest of its uncompressed tar) while the compressed bytes pass by, without
holding the layer in memory. `archive` re-exports them as the public face.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

from portside.errors import InvalidArgument

# Magic numbers at the start of compressed streams (RFC 1952, RFC 8878, xz and bzip2 formats).
_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"BZh", "bzip2"),
)
MAGIC_LEN = 6
# zstd has no output bound per call, so it is fed in small pieces: a hostile frame can expand
# at most ~32768x, which keeps one call's output to some tens of MiB.
_ZSTD_PIECE = 1024
_OUT_CHUNK = 1 << 20


class InvalidArchive(InvalidArgument):
    """An archive given to `load` is malformed; the message names the archive and the part."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


def sniff(head: bytes) -> str:
    """The compression of a stream from its first bytes: '', 'gzip', 'zstd', 'xz' or 'bzip2'."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return ""


class DiffHasher:
    """Digest of the uncompressed form of a stream fed in chunks (gzip and zstd, multi-member).

    `finish()` returns the digest, or raises ValueError when the compressed data is corrupt
    or ends early. Uncompressed input (and xz/bzip2, which layers may not use) gives None:
    the caller already has the plain digest or refuses the layer.
    """

    def __init__(self) -> None:
        import hashlib

        self._hash = hashlib.sha256()
        self._head = b""
        self.compression: str | None = None  # None until enough bytes arrived to tell
        self._decoder: Any = None
        self._done_member = False
        self._error = ""  # kept until finish(): the caller still wants the bytes stored/hashed

    def update(self, data: bytes) -> None:
        if self.compression is None:
            self._head += data
            if len(self._head) < MAGIC_LEN:
                return
            data, self._head = self._head, b""
            self.compression = sniff(data)
        if self.compression in ("gzip", "zstd") and not self._error:
            self._feed(data)

    def _new_decoder(self) -> Any:
        if self.compression == "gzip":
            return zlib.decompressobj(wbits=31)
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj()

    def _feed(self, data: bytes) -> None:
        try:
            while data:
                if self._decoder is None:
                    self._decoder = self._new_decoder()
                if self.compression == "gzip":
                    self._hash.update(self._decoder.decompress(data, _OUT_CHUNK))
                    rest = self._decoder.unconsumed_tail
                    while not rest and not self._decoder.eof:  # output zlib still holds back
                        out = self._decoder.decompress(b"", _OUT_CHUNK)
                        if not out:
                            break
                        self._hash.update(out)
                else:
                    self._hash.update(self._decoder.decompress(data[:_ZSTD_PIECE]))
                    rest = data[_ZSTD_PIECE:]
                if self._decoder.eof:  # end of one member/frame: what follows is the next one
                    rest = self._decoder.unused_data + rest
                    self._decoder = None
                    self._done_member = True
                data = rest
        except Exception as exc:  # zlib.error, zstandard.ZstdError
            self._error = f"corrupt {self.compression} data ({exc})"

    def finish(self) -> str | None:
        if self.compression is None:  # fewer than MAGIC_LEN bytes in all
            data, self._head = self._head, b""
            self.compression = sniff(data)
            if self.compression in ("gzip", "zstd"):
                self._feed(data)
        if self.compression not in ("gzip", "zstd"):
            return None
        if self._error:
            raise ValueError(self._error)
        if self._decoder is not None or not self._done_member:
            raise ValueError(f"truncated {self.compression} data")
        return f"sha256:{self._hash.hexdigest()}"


# Called as blobs stream in: (archive member, bytes done, member size).
Progress = Callable[[str, int, int], None]
