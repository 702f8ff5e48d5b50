"""The content store: blobs addressed by their digest.

Lifecycle: a writer streams bytes into a private file under `ingest/` while hashing them;
`commit` checks the digest (and size) it was promised, fsyncs, and renames the file to
`blobs/<algorithm>/<hex>`. A blob whose digest does not match never becomes visible, and
concurrent writers of one blob are safe: each has its own file, and renaming identical
content over itself is atomic. Readers only ever see complete, verified blobs.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from portside.errors import BlobUnknown, DigestMismatch, SizeMismatch
from portside.oci import digest as digests

CHUNK = 1 << 20


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobWriter:
    """Streams one blob into the store; use as a context manager, then `commit()`."""

    def __init__(self, store: ContentStore, expected: str | None, expected_size: int | None):
        self._store = store
        self._expected = digests.validate(expected) if expected else None
        self._expected_size = expected_size
        self._hash = digests.hasher(expected or "sha256")
        self._algorithm = (expected or "sha256").partition(":")[0]
        fd, name = tempfile.mkstemp(dir=store.ingest_dir, prefix="blob-")
        self._file: IO[bytes] = os.fdopen(fd, "wb")
        self._path = Path(name)
        self.size = 0
        self.digest: str | None = None

    def write(self, data: bytes | memoryview) -> int:
        self._file.write(data)
        self._hash.update(data)
        self.size += len(data)
        if self._expected_size is not None and self.size > self._expected_size:
            raise SizeMismatch(self._expected_size, self.size, self._expected or "blob")
        return len(data)

    def commit(self) -> str:
        """Verify, persist and publish the blob; returns its digest."""
        actual = f"{self._algorithm}:{self._hash.hexdigest()}"
        if self._expected and actual != self._expected:
            raise DigestMismatch(self._expected, actual)
        if self._expected_size is not None and self.size != self._expected_size:
            raise SizeMismatch(self._expected_size, self.size, actual)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        target = self._store.path(actual)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self._path, 0o444)
        os.rename(self._path, target)
        fsync_dir(target.parent)
        self.digest = actual
        return actual

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.digest is None:
            self.abort()


class ContentStore:
    """Blobs under `root/blobs`; see the module docstring for the write lifecycle."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs_dir = self.root / "blobs"
        self.ingest_dir = self.root / "ingest"
        self.blobs_dir.mkdir(parents=True, exist_ok=True)
        self.ingest_dir.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        digests.validate(digest)
        algorithm, _, hexpart = digest.partition(":")
        return self.blobs_dir / algorithm / hexpart

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise BlobUnknown(digest) from None

    def open(self, digest: str) -> IO[bytes]:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise BlobUnknown(digest) from None

    def read(self, digest: str) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def writer(self, expected: str | None = None, size: int | None = None) -> BlobWriter:
        return BlobWriter(self, expected, size)

    def ingest(
        self,
        source: IO[bytes] | Iterable[bytes],
        expected: str | None = None,
        size: int | None = None,
    ) -> str:
        """Stream `source` (a file or an iterable of chunks) into the store; returns the digest."""
        chunks: Iterable[bytes]
        if hasattr(source, "read"):
            reader: Any = source
            chunks = iter(lambda: reader.read(CHUNK), b"")
        else:
            chunks = source
        with self.writer(expected, size) as w:
            for chunk in chunks:
                w.write(chunk)
            return w.commit()

    def put(self, data: bytes, expected: str | None = None) -> str:
        """Store a small blob held in memory (manifests, configs)."""
        actual = digests.of_bytes(data, (expected or "sha256").partition(":")[0])
        if expected and expected != actual:
            raise DigestMismatch(expected, actual)
        if self.exists(actual):
            return actual
        return self.ingest([data], actual, len(data))

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(digest).unlink()

    def digests(self) -> Iterator[str]:
        for algorithm_dir in self.blobs_dir.iterdir():
            for blob in algorithm_dir.iterdir():
                yield f"{algorithm_dir.name}:{blob.name}"

    def clean_ingest(self, older_than: float = 0) -> None:
        """Remove abandoned partial writes (left by a crash) older than `older_than` seconds."""
        import time

        limit = time.time() - older_than
        for partial in self.ingest_dir.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if partial.stat().st_mtime <= limit:
                    partial.unlink()
