"""A build context from a client: a tar stream (plain, gzip, bzip2, xz or zstd), unpacked safely.

The daemon treats a context as hostile input. It is unpacked by the store's layer unpacker
(one pass, every entry created relative to directory descriptors opened with O_NOFOLLOW),
which refuses `..` and absolute names, symlinks climbing out, writes through a symlink,
device nodes (by this module's policy) and archives over the size limit, and leaves nothing
behind when it refuses. What differs from a layer: `.wh.` names are plain files, and the
archive may end without its end-of-archive marker (Go's tar reader accepts that, and the
docker client sends such contexts). Every file is hashed as it is written, so the build
never reads the context back to key its COPY steps.

A client sends its whole context with every build, mostly the same files as the last time.
`ContextCache` keeps the last few unpacked contexts with their digests and unpacks the next
one over the most recent free one (`store.resync`): an unchanged file is hashed as it
streams in and kept, not created and removed again.
"""

from __future__ import annotations

import bz2
import contextlib
import lzma
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from portside.build import dockerignore
from portside.errors import InvalidArgument, UnsafeLayer
from portside.store.resync import resync
from portside.store.unpack import LayerError, UnpackPolicy, parse_size, unpack

_BZIP2_MAGIC = b"BZh"
_XZ_MAGIC = b"\xfd7zXZ\x00"


class ContextError(InvalidArgument):
    """The build context a client sent cannot be used (not a tar, or a hostile one)."""


class _Peeked:
    """A reader whose first bytes were read ahead (to recognise the compression)."""

    def __init__(self, head: bytes, source: IO[bytes]) -> None:
        self._head = head
        self._source = source

    def read(self, n: int = -1) -> bytes:
        if self._head:
            head, self._head = (
                (self._head, b"") if n < 0 or n >= len(self._head) else
                (self._head[:n], self._head[n:])
            )
            return head
        return self._source.read(n)

    def readable(self) -> bool:
        return True


def _head(source: IO[bytes], n: int) -> bytes:
    """Up to n first bytes (a socket hands out what has arrived: read until n or the end)."""
    out = b""
    while len(out) < n:
        chunk = source.read(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def _decompressed(source: IO[bytes]) -> IO[bytes]:
    """bzip2 and xz undone here; plain, gzip and zstd are the unpacker's own."""
    head = _head(source, len(_XZ_MAGIC))
    peeked: Any = _Peeked(head, source)
    if head.startswith(_BZIP2_MAGIC):
        return bz2.BZ2File(peeked)
    if head.startswith(_XZ_MAGIC):
        return lzma.LZMAFile(peeked)
    reader: IO[bytes] = peeked
    return reader


def context_policy() -> UnpackPolicy:
    """The layer limits (PORTSIDE_MAX_CONTEXT_BYTES overrides the size), no device nodes,
    no whiteouts, and an archive may end without its end-of-archive marker, as Go's tar
    reader allows (the docker client's context for `-f -` ends so)."""
    overrides: dict[str, Any] = {
        "allow_devices": False,
        "eof_ends_archive": True,
        "whiteouts": False,  # a context's `.wh.x` is a file named so, not a deletion
    }
    limit = os.environ.get("PORTSIDE_MAX_CONTEXT_BYTES")
    if limit:
        overrides["max_bytes"] = parse_size(limit, "PORTSIDE_MAX_CONTEXT_BYTES")
    return UnpackPolicy.from_env(**overrides)


def unpack_context(
    source: IO[bytes], target: Path, policy: UnpackPolicy | None = None
) -> dict[str, str]:
    """Unpack a client's context tar into `target` (missing); returns the sha256 of every
    regular file by its path relative to `target`. ContextError when unusable, with nothing
    left at `target`."""
    digests: dict[bytes, str] = {}
    with _context_errors(target):
        unpack(
            _decompressed(source),
            target,
            layer="build context",
            policy=policy or context_policy(),
            file_digests=digests,
        )
    return {os.fsdecode(name): digest for name, digest in digests.items()}


@contextlib.contextmanager
def _context_errors(target: Path) -> Iterator[None]:
    """An unusable context as a ContextError (nothing left at `target`)."""
    try:
        yield
    except UnsafeLayer as exc:
        raise ContextError(f"build context: refusing entry {exc.entry!r}: {exc.reason}") from None
    except LayerError as exc:
        where = f" (entry {exc.entry!r})" if exc.entry else ""
        raise ContextError(f"build context is not a valid tar archive{where}: {exc.reason}") from None
    except (lzma.LZMAError, EOFError, OSError) as exc:
        # bz2 says "Invalid data stream" with an OSError that has no errno; a real I/O
        # failure (a full disk, the client gone) is not the client's bad data.
        if isinstance(exc, OSError) and (exc.errno is not None or isinstance(exc, ConnectionError)):
            raise
        shutil.rmtree(target, ignore_errors=True)
        raise ContextError(f"build context: bad compressed data ({exc})") from None


class ContextCache:
    """The last `slots` contexts the daemon unpacked, each a directory under `top` with its
    files' digests, each used by one build at a time; a build takes the most recently
    used free one and unpacks its context over it (`resync`). With every slot busy, a
    build gets a directory of its own, removed after. `clear` (builder prune) and a new
    ContextCache (the daemon's start) remove them all."""

    def __init__(self, top: Path, slots: int = 2) -> None:
        self.top = top
        self.slots = slots
        self._lock = threading.Lock()
        self._free: list[tuple[Path, dict[bytes, str]]] = []  # most recently used last
        self._kept = 0  # slots that exist, free or out
        self._made = 0
        shutil.rmtree(top, ignore_errors=True)  # a former daemon's: their digests are gone

    @contextlib.contextmanager
    def checkout(
        self, source: IO[bytes], policy: UnpackPolicy | None = None
    ) -> Iterator[tuple[Path, dict[str, str]]]:
        """Unpack `source`; yields the context directory and its files' sha256 by relative
        path. The directory must not be written to while it is out."""
        path, previous, keep = self._take()
        digests: dict[bytes, str] = {}
        try:
            with _context_errors(path):
                resync(
                    _decompressed(source),
                    path,
                    previous,
                    layer="build context",
                    policy=policy or context_policy(),
                    file_digests=digests,
                )
        except BaseException:
            self._give_back(path, None, keep)
            raise
        try:
            yield path, {os.fsdecode(name): digest for name, digest in digests.items()}
        finally:
            self._give_back(path, digests, keep)

    def _take(self) -> tuple[Path, dict[bytes, str], bool]:
        with self._lock:
            if self._free:
                path, previous = self._free.pop()
                return path, previous, True
            self._made += 1
            path = self.top / f"{self._made}"
            keep = self._kept < self.slots
            self._kept += keep
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.rmtree(path, ignore_errors=True)
        return path, {}, keep

    def _give_back(self, path: Path, digests: dict[bytes, str] | None, keep: bool) -> None:
        with self._lock:
            if keep and digests is not None and path.is_dir():
                self._free.append((path, digests))
                return
            self._kept -= keep
        shutil.rmtree(path, ignore_errors=True)

    def clear(self) -> None:
        """Remove every free context (builder prune: no build is running)."""
        with self._lock:
            free, self._free = self._free, []
            self._kept -= len(free)
        for path, _ in free:
            shutil.rmtree(path, ignore_errors=True)


def dockerfile_in(context: Path, name: str) -> Path | None:
    """The Dockerfile `name` (a path inside the context, as Docker's `dockerfile` parameter
    is), never one outside it; None lets the builder look for Dockerfile or Containerfile."""
    if not name:
        return None
    rel = dockerignore.clean(name)
    path = context / rel
    inside = Path(os.path.realpath(path)).is_relative_to(context.resolve())
    if not rel or not inside or not path.is_file():
        raise InvalidArgument(f"Cannot locate specified Dockerfile: {name}")
    return path
