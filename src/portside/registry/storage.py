"""Registry storage: repositories, manifests, tags and blob uploads over the content store.

Blobs live once in `portside.store.content.ContentStore` (`<root>/blobs/sha256/<hex>`),
shared by every repository; a repository only sees the blobs linked to it (`blob_links`),
so a digest known in one repository is not readable through another. Metadata is SQLite
(WAL) in `<root>/registry.db`.

Uploads: each upload is a directory `<root>/uploads/<id>/` holding `data` (the bytes so far)
and `repo`. The running sha256 of `data` is kept in memory keyed by upload id (hashlib
objects cannot be saved); when it is missing or out of step — the server restarted, or a
second worker owns it — the partial file is re-hashed on resume. Completing an upload
verifies the digest, fsyncs, and renames `data` into the blob path, so a blob is visible
only when whole and verified; an interrupted upload leaves only its upload directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import stat
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portside import sqlitedb
from portside.oci import digest as digests
from portside.oci import mediatypes as mt
from portside.oci.model import MAX_MANIFEST_BYTES, Index, Manifest, parse_document
from portside.registry.errors import RegistryError
from portside.registry.fileio import AppendFile, publish
from portside.store.content import ContentStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS blob_links (
    repo TEXT NOT NULL, digest TEXT NOT NULL, linked REAL NOT NULL,
    PRIMARY KEY (repo, digest)
);
CREATE TABLE IF NOT EXISTS manifests (
    repo TEXT NOT NULL, digest TEXT NOT NULL, media_type TEXT NOT NULL, size INTEGER NOT NULL,
    subject TEXT, artifact_type TEXT, annotations TEXT, created REAL NOT NULL,
    PRIMARY KEY (repo, digest)
);
CREATE INDEX IF NOT EXISTS manifests_by_subject ON manifests(repo, subject);
-- what each manifest names (config, layers, child manifests): GC marks from here
CREATE TABLE IF NOT EXISTS manifest_refs (
    repo TEXT NOT NULL, digest TEXT NOT NULL, target TEXT NOT NULL,
    PRIMARY KEY (repo, digest, target)
);
CREATE TABLE IF NOT EXISTS tags (
    repo TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL, updated REAL NOT NULL,
    PRIMARY KEY (repo, tag)
);
"""

HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class ManifestRecord:
    repo: str
    digest: str
    media_type: str
    size: int
    subject: str | None
    artifact_type: str | None
    annotations: dict[str, str]


@dataclass
class _Hashing:
    hasher: Any
    offset: int


class RegistryStorage:
    """Repositories, manifests, tags and uploads under one root directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.content = ContentStore(self.root)
        self._blobs = str(self.content.blobs_dir)
        self.uploads_dir = self.root / "uploads"
        self.uploads_dir.mkdir(exist_ok=True)
        self.db = sqlitedb.connect(self.root / "registry.db", SCHEMA, timeout=60)
        self._hashing: dict[str, _Hashing] = {}
        self.busy: set[str] = set()  # uploads a request is writing to right now

    def close(self) -> None:
        self.db.close()

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A write transaction; GC takes the same lock, so it never sweeps under a commit."""
        return sqlitedb.transaction(self.db)

    # -- repositories --

    def repo_exists(self, repo: str) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM manifests WHERE repo = ? UNION ALL "
            "SELECT 1 FROM blob_links WHERE repo = ? LIMIT 1",
            (repo, repo),
        ).fetchone()
        return row is not None

    def repositories(self, n: int | None = None, last: str = "") -> list[str]:
        sql = "SELECT DISTINCT repo FROM manifests WHERE repo > ? ORDER BY repo"
        args: list[Any] = [last]
        if n is not None:
            sql += " LIMIT ?"
            args.append(n)
        return [r[0] for r in self.db.execute(sql, args)]

    # -- blobs --

    def has_blob(self, repo: str, digest: str) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM blob_links WHERE repo = ? AND digest = ?", (repo, digest)
        ).fetchone()
        return row is not None and self.content.exists(digest)

    def blob_size(self, repo: str, digest: str) -> int | None:
        """The size of a blob linked to `repo`, None when it is not (or its file is gone):
        one indexed query and one stat, for HEAD (`digest` already validated)."""
        if self.db.execute(
            "SELECT 1 FROM blob_links WHERE repo = ? AND digest = ?", (repo, digest)
        ).fetchone() is None:
            return None
        algorithm, _, hexpart = digest.partition(":")
        try:
            st = os.stat(f"{self._blobs}/{algorithm}/{hexpart}")
        except OSError:
            return None
        return st.st_size if stat.S_ISREG(st.st_mode) else None

    def blob_path(self, repo: str, digest: str) -> Path:
        """The file of a blob linked to `repo`; BLOB_UNKNOWN otherwise."""
        if not self.has_blob(repo, digest):
            raise RegistryError("BLOB_UNKNOWN", f"blob {digest} unknown to {repo}", {"digest": digest})
        return self.content.path(digest)

    def link_blob(self, repo: str, digest: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO blob_links VALUES (?, ?, ?)", (repo, digest, time.time())
        )

    def unlink_blob(self, repo: str, digest: str) -> None:
        if not self.has_blob(repo, digest):
            raise RegistryError("BLOB_UNKNOWN", f"blob {digest} unknown to {repo}", {"digest": digest})
        self.db.execute("DELETE FROM blob_links WHERE repo = ? AND digest = ?", (repo, digest))

    def mount(self, repo: str, digest: str, source: str) -> bool:
        """Link a blob of `source` into `repo` without copying; False if `source` lacks it."""
        if not self.has_blob(source, digest):
            return False
        self.link_blob(repo, digest)
        return True

    # -- uploads --

    def start_upload(self, repo: str) -> str:
        upload_id = uuid.uuid4().hex
        path = self.uploads_dir / upload_id
        path.mkdir()
        (path / "repo").write_text(repo)
        (path / "data").touch()
        self._hashing[upload_id] = _Hashing(digests.hasher("sha256"), 0)
        return upload_id

    def upload_dir(self, repo: str, upload_id: str) -> Path:
        path = self.uploads_dir / upload_id
        try:
            owner = (path / "repo").read_text()
        except (FileNotFoundError, NotADirectoryError):
            owner = None
        if owner != repo:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", f"upload {upload_id} unknown to {repo}")
        return path

    def upload_size(self, repo: str, upload_id: str) -> int:
        return (self.upload_dir(repo, upload_id) / "data").stat().st_size

    def upload_hasher(self, upload_id: str, data: Path) -> _Hashing:
        """The running hash of an upload's data, re-hashed from the file when not in memory."""
        size = data.stat().st_size
        state = self._hashing.get(upload_id)
        if state is None or state.offset != size:
            hasher = digests.hasher("sha256")
            with open(data, "rb") as f:
                for chunk in iter(lambda: f.read(HASH_CHUNK), b""):
                    hasher.update(chunk)
            state = self._hashing[upload_id] = _Hashing(hasher, size)
        return state

    def open_upload(self, repo: str, upload_id: str) -> AppendFile:
        """The upload's data file opened for appending, carrying its running hash."""
        data = self.upload_dir(repo, upload_id) / "data"
        return AppendFile(data, self.upload_hasher(upload_id, data))

    def complete_upload(self, repo: str, upload_id: str, digest: str) -> None:
        """Verify the upload against `digest` and publish it as a blob of `repo`."""
        self.verify_upload(repo, upload_id, digest)
        self.link_blob(repo, digest)
        self.cancel_upload(repo, upload_id)

    def verify_upload(self, repo: str, upload_id: str, digest: str) -> None:
        """Check the upload's digest and move its data into the blob store (no database:
        safe on a worker thread); the caller links it to the repository."""
        path = self.upload_dir(repo, upload_id)
        data = path / "data"
        if digest.startswith("sha256:"):
            actual = "sha256:" + self.upload_hasher(upload_id, data).hasher.hexdigest()
        else:
            hasher = digests.hasher(digest)
            with open(data, "rb") as f:
                for chunk in iter(lambda: f.read(HASH_CHUNK), b""):
                    hasher.update(chunk)
            actual = f"{digest.partition(':')[0]}:{hasher.hexdigest()}"
        if actual != digest:
            raise RegistryError(
                "DIGEST_INVALID", f"upload {upload_id} has digest {actual}, not {digest}",
                {"digest": digest},
            )
        self.publish_file(data, digest)

    def publish_file(self, data: Path, digest: str) -> None:
        """Move a verified file into the content store's blob path (atomic, durable)."""
        publish(self.content, data, digest)

    def cancel_upload(self, repo: str, upload_id: str) -> None:
        path = self.upload_dir(repo, upload_id)
        self._hashing.pop(upload_id, None)
        shutil.rmtree(path, ignore_errors=True)

    def uploads(self) -> Iterator[tuple[str, float]]:
        """Every upload in progress with the time it last changed (for GC and cleanup)."""
        for path in self.uploads_dir.iterdir():
            with contextlib.suppress(FileNotFoundError):
                yield path.name, (path / "data").stat().st_mtime

    # -- manifests --

    def put_manifest(
        self, repo: str, reference: str, body: bytes, content_type: str | None,
        require_blobs: bool = True,
    ) -> tuple[str, ManifestRecord]:
        """Check and store a manifest or index; returns its digest and record.

        Raises MANIFEST_INVALID for a bad document and MANIFEST_BLOB_UNKNOWN when it names
        a blob or manifest this repository does not have; nothing is stored then. The
        pull-through cache stores upstream manifests before their blobs (`require_blobs`).
        """
        if len(body) > MAX_MANIFEST_BYTES:
            raise RegistryError("MANIFEST_INVALID", "manifest larger than 4 MiB", status=413)
        algorithm = reference.partition(":")[0] if ":" in reference else "sha256"
        digest = digests.of_bytes(body, algorithm)
        if ":" in reference and reference != digest:
            raise RegistryError("DIGEST_INVALID", f"manifest digest is {digest}, not {reference}")
        ctype = (content_type or "").partition(";")[0].strip() or None
        if ctype in ("application/json", "application/octet-stream"):
            ctype = None
        try:
            doc = parse_document(body, f"manifest {digest}", ctype)
        except RegistryError:
            raise
        except Exception as exc:  # InvalidDocument, InvalidDigest: every flaw of the document
            raise RegistryError("MANIFEST_INVALID", str(exc)) from None
        targets = self._targets(doc)
        subject = doc.subject.digest if doc.subject else None
        artifact_type = None
        if isinstance(doc, Manifest):
            artifact_type = doc.artifact_type or doc.config.media_type
        record = ManifestRecord(
            repo, digest, doc.media_type, len(body), subject, artifact_type, dict(doc.annotations)
        )
        with self.transaction() as db:
            for target, is_manifest, size in targets if require_blobs else []:
                row = self._manifest_row(repo, target) if is_manifest else None
                present = row is not None if is_manifest else self.has_blob(repo, target)
                actual = (row[2] if row else -1) if is_manifest else (
                    self.content.size(target) if present else -1)
                if present and actual != size:
                    raise RegistryError(
                        "MANIFEST_INVALID",
                        f"manifest {digest} says {target} is {size} bytes, it is {actual}",
                        {"digest": target},
                    )
                if not present:
                    raise RegistryError(
                        "MANIFEST_BLOB_UNKNOWN",
                        f"manifest {digest} references {target}, unknown to {repo}",
                        {"digest": target},
                    )
            if not self.content.exists(digest):
                self.content.put(body, digest)
            db.execute(
                "INSERT OR REPLACE INTO manifests VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (repo, digest, record.media_type, len(body), subject, artifact_type,
                 json.dumps(record.annotations), time.time()),
            )
            db.executemany(
                "INSERT OR IGNORE INTO manifest_refs VALUES (?, ?, ?)",
                [(repo, digest, t) for t, _, _ in targets],
            )
            if ":" not in reference:
                db.execute(
                    "INSERT OR REPLACE INTO tags VALUES (?, ?, ?, ?)",
                    (repo, reference, digest, time.time()),
                )
        return digest, record

    @staticmethod
    def _targets(doc: Manifest | Index) -> list[tuple[str, bool, int]]:
        """(digest, is_manifest, size) of what a document needs present in its repository."""
        if isinstance(doc, Index):
            return [(m.digest, True, m.size) for m in doc.manifests]
        blobs = [doc.config, *doc.layers]
        # Foreign layers (with `urls`) are fetched from elsewhere: not required here.
        return [(d.digest, False, d.size) for d in blobs
                if not d.urls or d.media_type in mt.MANIFESTS]

    def _manifest_row(self, repo: str, digest: str) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self.db.execute(
            "SELECT digest, media_type, size, subject, artifact_type, annotations"
            " FROM manifests WHERE repo = ? AND digest = ?",
            (repo, digest),
        ).fetchone()
        return row

    def resolve(self, repo: str, reference: str) -> ManifestRecord:
        """The manifest a tag or digest names in `repo`; MANIFEST_UNKNOWN otherwise."""
        digest = reference
        if ":" not in reference:
            row = self.db.execute(
                "SELECT digest FROM tags WHERE repo = ? AND tag = ?", (repo, reference)
            ).fetchone()
            if row is None:
                raise RegistryError("MANIFEST_UNKNOWN", f"manifest {reference!r} unknown to {repo}",
                                    {"tag": reference})
            digest = row[0]
        found = self._manifest_row(repo, digest)
        if found is None:
            raise RegistryError("MANIFEST_UNKNOWN", f"manifest {reference!r} unknown to {repo}",
                                {"digest": digest})
        return ManifestRecord(repo, found[0], found[1], found[2], found[3], found[4],
                              json.loads(found[5] or "{}"))

    def manifest_bytes(self, record: ManifestRecord) -> bytes:
        try:
            return self.content.read(record.digest)
        except Exception:
            raise RegistryError("MANIFEST_UNKNOWN", f"manifest {record.digest} content missing") from None

    def delete_manifest(self, repo: str, reference: str) -> None:
        """By digest: the manifest and every tag on it; by tag: only the tag (spec v1.1)."""
        if ":" not in reference:
            with self.transaction() as db:
                cur = db.execute("DELETE FROM tags WHERE repo = ? AND tag = ?", (repo, reference))
                if cur.rowcount == 0:
                    raise RegistryError("MANIFEST_UNKNOWN", f"tag {reference!r} unknown to {repo}")
            return
        self.resolve(repo, reference)
        with self.transaction() as db:
            db.execute("DELETE FROM tags WHERE repo = ? AND digest = ?", (repo, reference))
            db.execute("DELETE FROM manifests WHERE repo = ? AND digest = ?", (repo, reference))
            db.execute("DELETE FROM manifest_refs WHERE repo = ? AND digest = ?", (repo, reference))

    def tags(self, repo: str, n: int | None = None, last: str = "") -> list[str]:
        sql = "SELECT tag FROM tags WHERE repo = ? AND tag > ? ORDER BY tag"
        args: list[Any] = [repo, last]
        if n is not None:
            sql += " LIMIT ?"
            args.append(n)
        return [r[0] for r in self.db.execute(sql, args)]

    def tag_records(self, repo: str) -> list[tuple[str, str, float]]:
        """(tag, digest, updated) of a repository, newest first: for retention."""
        rows = self.db.execute(
            "SELECT tag, digest, updated FROM tags WHERE repo = ? ORDER BY updated DESC, tag",
            (repo,),
        )
        return [(r[0], r[1], r[2]) for r in rows]

    def referrers(self, repo: str, subject: str) -> list[ManifestRecord]:
        rows = self.db.execute(
            "SELECT digest, media_type, size, subject, artifact_type, annotations FROM manifests"
            " WHERE repo = ? AND subject = ? ORDER BY created, digest",
            (repo, subject),
        )
        return [ManifestRecord(repo, r[0], r[1], r[2], r[3], r[4], json.loads(r[5] or "{}"))
                for r in rows]
