"""Named and anonymous volumes: directories under $ROOT/volumes/<name>/_data, recorded in SQLite.

A volume is created on first use; when a container mounts an empty volume over a path
that has content in the image, that content is copied in first (Docker's copy-up, unless
`nocopy`). Paths inside a volume are resolved without following symlinks out of it.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import stat
import threading
from pathlib import Path
from typing import Any

from portside.engine.state import now_rfc3339
from portside.errors import Conflict, InvalidArgument, NotFound

SCHEMA = """
CREATE TABLE IF NOT EXISTS volumes (
    name      TEXT PRIMARY KEY,
    created   TEXT NOT NULL,
    labels    TEXT NOT NULL,
    anonymous INTEGER NOT NULL DEFAULT 0
);
"""
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def tree_size(top: Path) -> int:
    """Bytes of file content under `top` (each inode once), never following links: what a
    volume, a container's rw layer or the build cache's mounts take on disk."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _dirs, files in os.walk(top):
        for name in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(dirpath, name))
                if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_size
    return total


class NoSuchVolume(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"get {name}: no such volume")


class VolumeInUse(Conflict):
    def __init__(self, name: str, users: list[str]) -> None:
        super().__init__(f"remove {name}: volume is in use - [{', '.join(users)}]")


class VolumeStore:
    def __init__(self, root: Path, db: sqlite3.Connection, lock: threading.RLock) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o701)
        self.db = db
        self.lock = lock
        with lock:
            db.executescript(SCHEMA)

    def data_dir(self, name: str) -> Path:
        return self.root / name / "_data"

    def _doc(self, row: sqlite3.Row) -> dict[str, Any]:
        return {"CreatedAt": row["created"], "Driver": "local",
                "Labels": json.loads(row["labels"]) or None,
                "Mountpoint": str(self.data_dir(row["name"])), "Name": row["name"],
                "Options": None, "Scope": "local"}

    def create(self, name: str = "", labels: dict[str, str] | None = None,
               anonymous: bool = False) -> tuple[dict[str, Any], bool]:
        """Create (or find) a volume; returns its document and whether it is new."""
        if not name:
            name, anonymous = secrets.token_hex(32), True
        if not _NAME.match(name):
            raise InvalidArgument(f"create {name}: {name!r} includes invalid characters for a"
                                  " local volume name, only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        with self.lock:
            row = self.db.execute("SELECT * FROM volumes WHERE name = ?", (name,)).fetchone()
            if row is not None:
                return self._doc(row), False
            self.data_dir(name).mkdir(parents=True, exist_ok=True, mode=0o755)
            self.db.execute("INSERT INTO volumes VALUES (?, ?, ?, ?)",
                            (name, now_rfc3339(), json.dumps(labels or {}), int(anonymous)))
            row = self.db.execute("SELECT * FROM volumes WHERE name = ?", (name,)).fetchone()
        return self._doc(row), True

    def get(self, name: str) -> dict[str, Any]:
        with self.lock:
            row = self.db.execute("SELECT * FROM volumes WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NoSuchVolume(name)
        return self._doc(row)

    def is_anonymous(self, name: str) -> bool:
        with self.lock:
            row = self.db.execute("SELECT anonymous FROM volumes WHERE name = ?", (name,)).fetchone()
        return bool(row and row[0])

    def list(self) -> builtins.list[dict[str, Any]]:
        with self.lock:
            rows = self.db.execute("SELECT * FROM volumes ORDER BY name").fetchall()
        return [self._doc(r) for r in rows]

    def remove(self, name: str, users: builtins.list[str], force: bool = False) -> None:
        self.get(name)
        if users:
            raise VolumeInUse(name, users)
        with self.lock:
            self.db.execute("DELETE FROM volumes WHERE name = ?", (name,))
        target = self.root / name
        if target.exists():
            trash = self.root / f".trash-{secrets.token_hex(4)}"
            os.rename(target, trash)
            shutil.rmtree(trash, ignore_errors=True)

    def size(self, name: str) -> int:
        return tree_size(self.data_dir(name))


def copy_up(lowerdirs: list[Path], path: str, dest: Path) -> None:
    """Copy the image's content at `path` (layers top-most first) into the empty `dest`.

    Layers are applied bottom-up, so upper layers win; overlay whiteouts (0/0 character
    devices) delete what lower layers had. Nothing is followed through symlinks.
    """
    if any(dest.iterdir()):
        return
    rel = path.strip("/")
    for layer in reversed(lowerdirs):
        src = safe_join(layer, rel, follow_last=False)
        if src is None or not src.is_dir() or src.is_symlink():
            continue
        if dest.stat().st_mode != src.stat().st_mode:
            os.chmod(dest, stat.S_IMODE(src.stat().st_mode))
        for entry in os.scandir(src):
            target = dest / entry.name
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                _remove(target)
                continue
            if entry.is_dir(follow_symlinks=False):
                if target.exists() and not target.is_dir():
                    _remove(target)
                shutil.copytree(entry.path, target, symlinks=True, dirs_exist_ok=True)
            else:
                _remove(target)
                if entry.is_symlink():
                    os.symlink(os.readlink(entry.path), target)
                else:
                    shutil.copy2(entry.path, target, follow_symlinks=False)
            os.lchown(target, st.st_uid, st.st_gid)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif p.exists() or p.is_symlink():
        p.unlink()


def safe_join(base: Path, rel: str, follow_last: bool = True) -> Path | None:
    """`base/rel` with every symlink resolved as if `base` were `/`: never outside `base`.

    Returns None when a component is missing. Used for copy-up sources and for paths
    inside volumes, so a crafted symlink cannot point the daemon at host files.
    """
    base = Path(base)
    parts = [p for p in rel.split("/") if p and p != "."]
    current = base
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            current = current.parent if current != base else base
            continue
        nxt = current / part
        if nxt.is_symlink() and (parts or follow_last):
            hops += 1
            if hops > 40:
                return None
            link = os.readlink(nxt)
            if link.startswith("/"):
                current = base
            parts = [p for p in link.split("/") if p and p != "."] + parts
            continue
        if not nxt.exists() and not nxt.is_symlink():
            return None
        current = nxt
    return current
