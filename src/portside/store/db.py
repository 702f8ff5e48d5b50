"""The store's metadata in SQLite (WAL): image records, tags, snapshots and leases."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from portside import sqlitedb

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    manifest_digest TEXT PRIMARY KEY,
    config_digest   TEXT NOT NULL,
    media_type      TEXT NOT NULL,
    size            INTEGER NOT NULL,
    created         TEXT NOT NULL,
    added           REAL NOT NULL,
    index_digest    TEXT
);
CREATE INDEX IF NOT EXISTS images_by_config ON images(config_digest);
CREATE TABLE IF NOT EXISTS tags (
    name            TEXT PRIMARY KEY,
    manifest_digest TEXT NOT NULL REFERENCES images(manifest_digest)
);
CREATE INDEX IF NOT EXISTS tags_by_image ON tags(manifest_digest);
-- Who uses an image (a container, a build): such an image is never removed or pruned.
CREATE TABLE IF NOT EXISTS leases (
    holder          TEXT NOT NULL,
    manifest_digest TEXT NOT NULL,
    PRIMARY KEY (holder, manifest_digest)
);
-- Blobs kept for something other than an image (the build cache's step layers).
CREATE TABLE IF NOT EXISTS content_leases (
    holder TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (holder, digest)
);
CREATE TABLE IF NOT EXISTS snapshots (
    diff_id TEXT PRIMARY KEY,
    size    INTEGER NOT NULL,
    created REAL NOT NULL
);
"""


def connect(path: Path) -> sqlite3.Connection:
    """Open (and create) the metadata database."""
    return sqlitedb.connect(path, SCHEMA)
