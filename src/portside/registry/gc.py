"""Garbage collection and retention for a registry's storage.

Mark and sweep, inside one SQLite write transaction so no manifest can be committed (and
no blob linked) between marking and sweeping: pushes simply wait for it. Marked are every
manifest, everything a manifest names, and every blob linked to a repository within the
grace period (layers pushed whose manifest has not come yet). A blob file younger than the
grace period is never swept either, uploads in progress live outside the blob tree (and
are only cleaned once untouched for a day and the grace period), and `--dry-run` changes
nothing. Retention (`keep_last` tags matching `tag_pattern` per repository, newest first)
runs first; manifests that lose their last tag to it are deleted with them.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from portside.errors import InvalidArgument
from portside.registry.storage import RegistryStorage

STALE_UPLOAD = 24 * 3600


@dataclass
class GcReport:
    tags: list[str] = field(default_factory=list)
    manifests: list[str] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)
    bytes: int = 0
    kept: int = 0


def load_settings(path: Path) -> dict[str, object]:
    """GC settings from YAML: `grace`, `keep_last`, `tag_pattern`, `delete_untagged`."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidArgument(f"{path}: cannot read GC settings ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"{path}: GC settings must be a mapping")
    data = data.get("gc", data) if isinstance(data.get("gc", data), dict) else data
    unknown = set(data) - {"grace", "keep_last", "tag_pattern", "delete_untagged"}
    if unknown:
        raise InvalidArgument(f"{path}: unknown GC settings {sorted(unknown)}")
    if "keep_last" in data and not isinstance(data["keep_last"], int):
        raise InvalidArgument(f"{path}: keep_last must be a number")
    return dict(data)


def collect(root: Path, *, dry_run: bool = False, grace: float = 3600,
            keep_last: int | None = None, tag_pattern: str = ".*",
            delete_untagged: bool = False) -> GcReport:
    try:
        pattern = re.compile(tag_pattern)
    except re.error as exc:
        raise InvalidArgument(f"--tag-pattern {tag_pattern!r}: {exc}") from None
    if keep_last is not None and keep_last < 0:
        raise InvalidArgument("--keep-last must be 0 or more")
    if not (Path(root) / "registry.db").exists():
        raise InvalidArgument(f"{root}: not a registry root (no registry.db)")
    storage = RegistryStorage(root)
    report = GcReport()
    now = time.time()
    try:
        db = storage.db
        db.execute("BEGIN IMMEDIATE")
        try:
            if keep_last is not None:
                _retention(storage, keep_last, pattern, report)
            if delete_untagged:
                _untagged(storage, report)
            marked = {r[0] for r in db.execute("SELECT digest FROM manifests")}
            marked |= {r[0] for r in db.execute(
                "SELECT target FROM manifest_refs JOIN manifests USING (repo, digest)")}
            marked |= {r[0] for r in db.execute(
                "SELECT digest FROM blob_links WHERE linked > ?", (now - grace,))}
            doomed: list[tuple[str, int]] = []
            for digest in storage.content.digests():
                if digest in marked:
                    report.kept += 1
                    continue
                try:
                    st = storage.content.path(digest).stat()
                except (FileNotFoundError, ValueError):
                    continue
                if st.st_mtime > now - grace:
                    report.kept += 1
                    continue
                doomed.append((digest, st.st_size))
            for digest, size in doomed:
                report.blobs.append(digest)
                report.bytes += size
                db.execute("DELETE FROM blob_links WHERE digest = ?", (digest,))
            if dry_run:
                db.execute("ROLLBACK")
            else:
                for digest, _ in doomed:  # files go before the commit: links never outlive them
                    storage.content.delete(digest)
                db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        for upload_id, mtime in list(storage.uploads()):
            if mtime < now - max(grace, STALE_UPLOAD):
                report.uploads.append(upload_id)
                if not dry_run:
                    shutil.rmtree(storage.uploads_dir / upload_id, ignore_errors=True)
        if not dry_run:
            with contextlib.suppress(OSError):
                storage.content.clean_ingest(older_than=max(grace, STALE_UPLOAD))
    finally:
        storage.close()
    return report


def _delete_manifest(storage: RegistryStorage, repo: str, digest: str, report: GcReport) -> None:
    storage.db.execute("DELETE FROM manifests WHERE repo = ? AND digest = ?", (repo, digest))
    storage.db.execute("DELETE FROM manifest_refs WHERE repo = ? AND digest = ?", (repo, digest))
    report.manifests.append(f"{repo}@{digest}")


def _referenced(storage: RegistryStorage, repo: str, digest: str) -> bool:
    """Named by a tag, or a child of another manifest (an index) of the repository."""
    db = storage.db
    return (
        db.execute("SELECT 1 FROM tags WHERE repo = ? AND digest = ?", (repo, digest)).fetchone()
        is not None
        or db.execute(
            "SELECT 1 FROM manifest_refs JOIN manifests USING (repo, digest)"
            " WHERE repo = ? AND target = ?", (repo, digest)).fetchone() is not None
    )


def _retention(storage: RegistryStorage, keep_last: int, pattern: re.Pattern[str],
               report: GcReport) -> None:
    repos = [r[0] for r in storage.db.execute("SELECT DISTINCT repo FROM tags")]
    for repo in repos:
        matching = [t for t in storage.tag_records(repo) if pattern.fullmatch(t[0])]
        for tag, digest, _ in matching[keep_last:]:
            storage.db.execute("DELETE FROM tags WHERE repo = ? AND tag = ?", (repo, tag))
            report.tags.append(f"{repo}:{tag}")
            if not _referenced(storage, repo, digest):
                _delete_manifest(storage, repo, digest, report)


def _untagged(storage: RegistryStorage, report: GcReport) -> None:
    rows = storage.db.execute("SELECT repo, digest, subject FROM manifests").fetchall()
    for repo, digest, subject in rows:
        if subject:  # a referrer lives as long as its subject
            continue
        if not _referenced(storage, repo, digest):
            _delete_manifest(storage, repo, digest, report)
