"""Images: manifests whose config and layers are all in the content store, with their tags.

An image is recorded only once every blob it names is present and verified, so a record
never points at missing content. Image ids are config digests, as in Docker. Removal and
garbage collection never touch anything an image, a tag or a lease still references.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from portside import config as portside_config
from portside import sqlitedb
from portside.errors import Conflict, ImageUnknown, InvalidArgument
from portside.oci import digest as digests
from portside.oci import mediatypes as mt
from portside.oci import reference as refs
from portside.oci.model import ImageConfig, Index, InvalidDocument, Manifest, parse_document
from portside.store import db as store_db
from portside.store.content import ContentStore

if TYPE_CHECKING:
    import sqlite3

    from portside.store.snapshots import SnapshotStore


@dataclass(frozen=True)
class Image:
    manifest_digest: str
    config_digest: str
    media_type: str
    size: int
    created: str
    added: float
    index_digest: str | None = None
    tags: tuple[str, ...] = field(default=())

    @property
    def id(self) -> str:
        return self.config_digest

    @property
    def short_id(self) -> str:
        return digests.short_id(self.config_digest)


@dataclass
class RemovalReport:
    untagged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    reclaimed: int = 0


class ImageStore:
    """The local image store under one root (`$PORTSIDE_ROOT`, default /var/lib/portside)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root else portside_config.root()
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.content = ContentStore(self.root)
        self.db: sqlite3.Connection = store_db.connect(self.root / "store.db")
        self._snapshots: SnapshotStore | None = None

    @property
    def snapshots(self) -> SnapshotStore:
        if self._snapshots is None:
            from portside.store.snapshots import SnapshotStore

            self._snapshots = SnapshotStore(self.root / "snapshots", self.db, self.content)
        return self._snapshots

    # -- locking: imports hold a shared lock so GC (exclusive) never sweeps their fresh blobs --

    @contextlib.contextmanager
    def _lock(self, mode: int) -> Iterator[None]:
        fd = os.open(self.root / "gc.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)

    def importing(self) -> contextlib.AbstractContextManager[None]:
        """Hold while writing blobs that an image record will reference soon."""
        return self._lock(fcntl.LOCK_SH)

    # -- adding --

    def add_image(
        self,
        manifest_bytes: bytes,
        tags: Iterable[str] = (),
        index_digest: str | None = None,
        media_type: str | None = None,
    ) -> Image:
        """Record an image whose config and layers are already in the content store.

        The manifest itself is stored too. Raises InvalidDocument or BlobUnknown, with
        nothing recorded, when the manifest is bad or names missing content.
        """
        manifest_digest = digests.of_bytes(manifest_bytes)
        where = f"manifest {manifest_digest}"
        manifest = parse_document(manifest_bytes, where, media_type)
        if not isinstance(manifest, Manifest) or not manifest.is_image:
            raise InvalidDocument(where, "not an image manifest")
        self._check_image_content(manifest, where)
        config = self.config_of(manifest)
        if len(config.diff_ids) != len(manifest.layers):
            raise InvalidDocument(
                where,
                f"{len(manifest.layers)} layers but the config lists {len(config.diff_ids)} diff_ids",
            )
        self.content.put(manifest_bytes, manifest_digest)
        size = manifest.config.size + sum(layer.size for layer in manifest.layers)
        names = [str(refs.parse_tagged(t)) for t in tags]
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO images VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    manifest_digest,
                    manifest.config.digest,
                    manifest.media_type,
                    size,
                    config.created,
                    time.time(),
                    index_digest,
                ),
            )
            for name in names:
                db.execute("INSERT OR REPLACE INTO tags VALUES (?, ?)", (name, manifest_digest))
        return self.get_by_manifest(manifest_digest)

    def _check_image_content(self, manifest: Manifest, where: str) -> None:
        from portside.errors import BlobUnknown

        if manifest.config.media_type not in mt.CONFIGS:
            raise InvalidDocument(where, f"config media type {manifest.config.media_type!r}")
        for desc in (manifest.config, *manifest.layers):
            if desc is not manifest.config and desc.media_type not in mt.LAYERS:
                raise InvalidDocument(where, f"unsupported layer media type {desc.media_type!r}")
            if not self.content.exists(desc.digest):
                raise BlobUnknown(desc.digest, where)
            if self.content.size(desc.digest) != desc.size:
                raise InvalidDocument(where, f"blob {desc.digest} is not {desc.size} bytes")

    def _transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return sqlitedb.transaction(self.db)

    # -- reading --

    def _image_from_row(self, row: sqlite3.Row) -> Image:
        tags = tuple(
            r["name"]
            for r in self.db.execute(
                "SELECT name FROM tags WHERE manifest_digest = ? ORDER BY name",
                (row["manifest_digest"],),
            )
        )
        return Image(
            row["manifest_digest"],
            row["config_digest"],
            row["media_type"],
            row["size"],
            row["created"],
            row["added"],
            row["index_digest"],
            tags,
        )

    def get_by_manifest(self, manifest_digest: str) -> Image:
        row = self.db.execute(
            "SELECT * FROM images WHERE manifest_digest = ?", (manifest_digest,)
        ).fetchone()
        if row is None:
            raise ImageUnknown(manifest_digest)
        return self._image_from_row(row)

    def list(self) -> list[Image]:
        rows = self.db.execute("SELECT * FROM images ORDER BY added DESC").fetchall()
        return [self._image_from_row(r) for r in rows]

    def get(self, name: str) -> Image:
        """Find an image by tag (`busybox`, `busybox:1.36`), digest reference, or (short) id."""
        name = name.strip()
        if not name:
            raise InvalidArgument("empty image name")
        hex_prefix = name.removeprefix("sha256:")
        if 3 <= len(hex_prefix) <= 64 and all(c in "0123456789abcdef" for c in hex_prefix):
            rows = self.db.execute(
                "SELECT * FROM images WHERE config_digest LIKE ? OR manifest_digest LIKE ?"
                " ORDER BY added DESC",
                (f"sha256:{hex_prefix}%", f"sha256:{hex_prefix}%"),
            ).fetchall()
            configs = {r["config_digest"] for r in rows}
            if len(configs) > 1:
                raise InvalidArgument(f"image id {name!r} is ambiguous: it matches {len(configs)} images")
            if rows:
                return self._image_from_row(rows[0])
            if name.startswith("sha256:"):
                raise ImageUnknown(name)
        ref = refs.parse(name)
        if ref.digest:
            row = self.db.execute(
                "SELECT * FROM images WHERE manifest_digest = ? OR index_digest = ?",
                (ref.digest, ref.digest),
            ).fetchone()
        else:
            row = self.db.execute(
                "SELECT images.* FROM tags JOIN images USING (manifest_digest) WHERE name = ?",
                (str(ref.with_default_tag()),),
            ).fetchone()
        if row is None:
            raise ImageUnknown(name)
        return self._image_from_row(row)

    def manifest(self, image: Image) -> Manifest:
        doc = parse_document(self.content.read(image.manifest_digest), image.manifest_digest)
        assert isinstance(doc, Manifest)
        return doc

    def manifest_bytes(self, image: Image) -> bytes:
        return self.content.read(image.manifest_digest)

    def config_of(self, manifest: Manifest) -> ImageConfig:
        return ImageConfig.parse(self.content.read(manifest.config.digest), manifest.config.digest)

    def config(self, image: Image) -> ImageConfig:
        return ImageConfig.parse(self.content.read(image.config_digest), image.config_digest)

    # -- naming --

    def tag(self, source: str, target: str) -> Image:
        image = self.get(source)
        name = str(refs.parse_tagged(target))
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO tags VALUES (?, ?)", (name, image.manifest_digest))
        return self.get_by_manifest(image.manifest_digest)

    # -- leases: containers and builds hold the images they use --

    def lease(self, holder: str, image: Image) -> None:
        self.db.execute("INSERT OR IGNORE INTO leases VALUES (?, ?)", (holder, image.manifest_digest))

    def release(self, holder: str) -> None:
        self.db.execute("DELETE FROM leases WHERE holder = ?", (holder,))

    def lease_content(self, holder: str, digest: str) -> None:
        """Keep a blob that no image references (a cached build step's layer) from GC."""
        self.db.execute("INSERT OR IGNORE INTO content_leases VALUES (?, ?)", (holder, digest))

    def release_content(self, holder: str) -> None:
        self.db.execute("DELETE FROM content_leases WHERE holder = ?", (holder,))

    def release_content_of(self, prefix: str) -> None:
        """Drop the content leases of every holder named `prefix...` (a crash's leftovers)."""
        self.db.execute("DELETE FROM content_leases WHERE substr(holder, 1, ?) = ?",
                        (len(prefix), prefix))

    def holders(self, image: Image) -> builtins.list[str]:
        rows = self.db.execute(
            "SELECT holder FROM leases WHERE manifest_digest IN"
            " (SELECT manifest_digest FROM images WHERE config_digest = ?)",
            (image.config_digest,),
        )
        return [r["holder"] for r in rows]

    # -- removal --

    def remove(self, name: str, force: bool = False) -> RemovalReport:
        """`docker rmi`: untag a name; delete the image when its last name goes.

        An image held by a container is refused unless `force`, as in Docker; with `force`
        its names are removed but its content stays until the holder lets it go.
        """
        image = self.get(name)
        holders = self.holders(image)
        report = RemovalReport()
        if not self.looks_like_id(name, image):
            ref = str(refs.parse(name).with_default_tag())
            if ref in image.tags:
                if len(image.tags) == 1 and holders and not force:
                    raise self._in_use(name, image)
                self.db.execute("DELETE FROM tags WHERE name = ?", (ref,))
                report.untagged.append(refs.parse(ref).familiar())
                if len(image.tags) > 1 or holders:
                    return report
        elif len(image.tags) > 1 and not force:
            raise Conflict(
                f"unable to delete {image.short_id} (must be forced):"
                " image is referenced in multiple repositories"
            )
        if holders and not force:
            raise self._in_use(name, image)
        with self._transaction() as db:
            rows = db.execute(
                "SELECT name FROM tags JOIN images USING (manifest_digest) WHERE config_digest = ?",
                (image.config_digest,),
            ).fetchall()
            report.untagged.extend(refs.parse(r[0]).familiar() for r in rows)
            db.execute(
                "DELETE FROM tags WHERE manifest_digest IN"
                " (SELECT manifest_digest FROM images WHERE config_digest = ?)",
                (image.config_digest,),
            )
            if not holders:
                db.execute("DELETE FROM images WHERE config_digest = ?", (image.config_digest,))
        if not holders:
            report.deleted.append(image.config_digest)
            report.reclaimed = self.collect_garbage()
        return report

    def untag(self, name: str) -> bool:
        """Remove one tag (`repo:tag`, `latest` by default); False when it did not exist."""
        ref = str(refs.parse(name).with_default_tag())
        return self.db.execute("DELETE FROM tags WHERE name = ?", (ref,)).rowcount > 0

    def forget(self, image: Image) -> builtins.list[str]:
        """Drop the records of an image (every manifest of its config) and its tags; the
        blobs stay until `collect_garbage`. Returns the tags that went."""
        with self._transaction() as db:
            rows = db.execute(
                "SELECT name FROM tags JOIN images USING (manifest_digest) WHERE config_digest = ?"
                " ORDER BY name", (image.config_digest,),
            ).fetchall()
            db.execute(
                "DELETE FROM tags WHERE manifest_digest IN"
                " (SELECT manifest_digest FROM images WHERE config_digest = ?)",
                (image.config_digest,),
            )
            db.execute("DELETE FROM images WHERE config_digest = ?", (image.config_digest,))
        return [r[0] for r in rows]

    @staticmethod
    def looks_like_id(name: str, image: Image) -> bool:
        """Whether `name` is (a prefix of) the image's id or manifest digest, not a name."""
        bare = name.removeprefix("sha256:")
        return image.config_digest.removeprefix("sha256:").startswith(bare) or (
            image.manifest_digest.removeprefix("sha256:").startswith(bare)
        )

    @staticmethod
    def _in_use(name: str, image: Image) -> Conflict:
        return Conflict(
            f"unable to remove image {name!r} ({image.short_id}): it is used by a container"
            " (stop and remove the container, or use --force)"
        )

    def prune(self, all_unused: bool = False) -> RemovalReport:
        """`docker image prune [-a]`: remove dangling (or all unused) images, then collect."""
        report = RemovalReport()
        held = {r[0] for r in self.db.execute("SELECT manifest_digest FROM leases")}
        for image in self.list():
            if image.manifest_digest in held or (image.tags and not all_unused):
                continue
            with self._transaction() as db:
                db.execute("DELETE FROM tags WHERE manifest_digest = ?", (image.manifest_digest,))
                db.execute("DELETE FROM images WHERE manifest_digest = ?", (image.manifest_digest,))
            report.untagged.extend(refs.parse(t).familiar() for t in image.tags)
            report.deleted.append(image.config_digest)
        report.reclaimed = self.collect_garbage()
        return report

    # -- garbage collection --

    def referenced_blobs(self) -> set[str]:
        keep = {r[0] for r in self.db.execute("SELECT digest FROM content_leases")}
        for row in self.db.execute("SELECT manifest_digest, index_digest FROM images"):
            keep.add(row["manifest_digest"])
            if row["index_digest"]:
                keep.add(row["index_digest"])
            with contextlib.suppress(Exception):
                doc = parse_document(self.content.read(row["manifest_digest"]), "")
                if isinstance(doc, Manifest):
                    keep.add(doc.config.digest)
                    keep.update(layer.digest for layer in doc.layers)
        return keep

    def referenced_diff_ids(self) -> set[str]:
        keep: set[str] = set()
        for row in self.db.execute("SELECT DISTINCT config_digest FROM images"):
            with contextlib.suppress(Exception):
                keep.update(
                    ImageConfig.parse(self.content.read(row[0]), row[0]).diff_ids
                )
        return keep

    def collect_garbage(self, wait: bool = True) -> int:
        """Remove blobs and snapshots no image references; returns the bytes reclaimed.

        The sweep waits for imports under way (they hold `importing`), unless `wait` is
        false: then, while one is under way, nothing is swept (0) and the next collection
        takes what this one left. The daemon collects so while it holds its image lock,
        which a build or pull in progress needs to finish: waiting would never end.
        """
        fd = os.open(self.root / "gc.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0
            return self._sweep()
        finally:
            os.close(fd)

    def _sweep(self) -> int:
        reclaimed = 0
        keep = self.referenced_blobs()
        for digest in list(self.content.digests()):
            if digest not in keep:
                with contextlib.suppress(FileNotFoundError):
                    reclaimed += self.content.size(digest)
                self.content.delete(digest)
        self.content.clean_ingest(older_than=24 * 3600)
        keep_snapshots = self.referenced_diff_ids()
        for diff_id in self.snapshots.ids():
            if diff_id not in keep_snapshots:
                reclaimed += self.snapshots.remove(diff_id)
        return reclaimed

    def disk_usage(self) -> dict[str, int]:
        """Bytes used by blobs and snapshots, and how many images: for `system df`."""
        blob_bytes = 0
        for digest in self.content.digests():
            with contextlib.suppress(Exception):
                blob_bytes += self.content.size(digest)
        return {
            "images": len(self.list()),
            "blobs": blob_bytes,
            "snapshots": self.snapshots.total_size(),
            "reclaimable": self._reclaimable(),
        }

    def _reclaimable(self) -> int:
        held = {r[0] for r in self.db.execute("SELECT manifest_digest FROM leases")}
        return sum(i.size for i in self.list() if i.manifest_digest not in held and not i.tags)


def resolve_index(index: Index) -> str:
    """Pick the host platform's manifest digest from an index, or say why not."""
    desc = index.for_platform()
    if desc is None:
        raise InvalidArgument("the image index has no manifest for this platform")
    return desc.digest
