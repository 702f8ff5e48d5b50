"""The per-digest package index (`packages.db` under the root): each image's inventory,
computed once per manifest digest and kept, so `scan` and `where` join packages with
advisories without reading layers again. An image's content never changes under its
digest, so an entry never goes stale; one whose image is gone is dropped by `forget`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from portside import sqlitedb
from portside.store.images import Image, ImageStore
from portside.trust.sbom.inventory import Inventory, collect
from portside.trust.vulns.match import Installed

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    digest TEXT PRIMARY KEY, config TEXT NOT NULL, distro TEXT NOT NULL,
    release TEXT NOT NULL, indexed REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS images_by_config ON images(config);
CREATE TABLE IF NOT EXISTS packages (
    digest TEXT NOT NULL REFERENCES images(digest) ON DELETE CASCADE,
    ecosystem TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL,
    source TEXT NOT NULL, source_version TEXT NOT NULL, path TEXT NOT NULL,
    layer TEXT NOT NULL, purl TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS packages_by_digest ON packages(digest);
CREATE INDEX IF NOT EXISTS packages_by_name ON packages(name);
CREATE INDEX IF NOT EXISTS packages_by_source ON packages(source);
"""


@dataclass(frozen=True)
class Indexed:
    digest: str
    config: str
    distro: str
    release: str
    packages: list[Installed]


class PackageIndex:
    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.conn = sqlitedb.connect(root / "packages.db", SCHEMA)

    def close(self) -> None:
        self.conn.close()

    def ensure(self, store: ImageStore, image: Image) -> Indexed:
        """The image's entry, reading its layers only the first time its digest is seen."""
        if (found := self.get(image.manifest_digest)) is not None:
            return found
        self.put(collect(store, image))
        found = self.get(image.manifest_digest)
        assert found is not None
        return found

    def put(self, inventory: Inventory) -> None:
        with sqlitedb.transaction(self.conn):
            self.conn.execute("DELETE FROM images WHERE digest = ?", (inventory.image_digest,))
            self.conn.execute("INSERT INTO images VALUES (?, ?, ?, ?, ?)", (
                inventory.image_digest, inventory.config_digest, inventory.distro.id,
                inventory.distro.version_id, time.time()))
            self.conn.executemany("INSERT INTO packages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                (inventory.image_digest, p.ecosystem, p.name, p.version, p.source,
                 p.source_version, p.path, p.layer, p.purl) for p in inventory.packages])

    def get(self, digest: str) -> Indexed | None:
        row = self.conn.execute("SELECT * FROM images WHERE digest = ?", (digest,)).fetchone()
        if row is None:
            return None
        packages = [Installed(r["ecosystem"], r["name"], r["version"], r["source"],
                              r["source_version"], r["path"], r["layer"], r["purl"])
                    for r in self.conn.execute("SELECT * FROM packages WHERE digest = ?",
                                               (digest,))]
        return Indexed(row["digest"], row["config"], row["distro"], row["release"], packages)

    def by_config(self, config: str) -> Indexed | None:
        row = self.conn.execute("SELECT digest FROM images WHERE config = ?", (config,)).fetchone()
        return self.get(row["digest"]) if row else None

    def digests(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT digest FROM images")]

    def forget(self, keep: Iterable[str]) -> int:
        """Drop the entries of images no longer stored; how many went."""
        gone = set(self.digests()) - set(keep)
        with sqlitedb.transaction(self.conn):
            self.conn.executemany("DELETE FROM images WHERE digest = ?", [(d,) for d in gone])
        return len(gone)
