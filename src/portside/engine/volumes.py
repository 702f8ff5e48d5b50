"""Named and anonymous volumes: directories under $ROOT/volumes/<name>/_data, recorded in
the state backend under `volumes/<name>`.

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
import stat
from pathlib import Path
from typing import Any

from portside.engine.state import now_rfc3339
from portside.errors import Conflict, InvalidArgument, NotFound
from portside.state.backend import Compare, Get, Put, StateBackend

VOLUMES = "volumes/"
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


def volume_doc(created: str, labels: dict[str, str], anonymous: bool) -> bytes:
    """The record of a volume as stored under `volumes/<name>`."""
    return json.dumps({"created": created, "labels": labels,
                       "anonymous": anonymous}).encode()


class VolumeStore:
    """The volumes' directories under `root` and their records in `backend` (shared with
    the engine's other parts). A record is created only if absent, so two creates of one
    name agree on which one made it."""

    def __init__(self, root: Path, backend: StateBackend) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o701)
        self.backend = backend

    def data_dir(self, name: str) -> Path:
        return self.root / name / "_data"

    def _doc(self, name: str, value: bytes) -> dict[str, Any]:
        d = json.loads(value)
        return {"CreatedAt": d["created"], "Driver": "local", "Labels": d["labels"] or None,
                "Mountpoint": str(self.data_dir(name)), "Name": name,
                "Options": None, "Scope": "local"}

    def create(self, name: str = "", labels: dict[str, str] | None = None,
               anonymous: bool = False) -> tuple[dict[str, Any], bool]:
        """Create (or find) a volume; returns its document and whether it is new."""
        if not name:
            name, anonymous = secrets.token_hex(32), True
        if not _NAME.match(name):
            raise InvalidArgument(f"create {name}: {name!r} includes invalid characters for a"
                                  " local volume name, only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        key = VOLUMES + name
        kv = self.backend.get(key)
        if kv is not None:
            return self._doc(name, kv.value), False
        self.data_dir(name).mkdir(parents=True, exist_ok=True, mode=0o755)
        value = volume_doc(now_rfc3339(), labels or {}, anonymous)
        r = self.backend.txn([Compare.absent(key)], [Put(key, value)], [Get(key)])
        if not r.succeeded:  # created by someone else meanwhile: theirs it is
            return self._doc(name, r.responses[0].kvs[0].value), False
        return self._doc(name, value), True

    def get(self, name: str) -> dict[str, Any]:
        kv = self.backend.get(VOLUMES + name) if name else None
        if kv is None:
            raise NoSuchVolume(name)
        return self._doc(name, kv.value)

    def is_anonymous(self, name: str) -> bool:
        kv = self.backend.get(VOLUMES + name) if name else None
        return bool(kv and json.loads(kv.value)["anonymous"])

    def list(self) -> builtins.list[dict[str, Any]]:
        kvs, _ = self.backend.range(VOLUMES)  # sorted by key, so by name
        return [self._doc(kv.key[len(VOLUMES):], kv.value) for kv in kvs]

    def remove(self, name: str, users: builtins.list[str], force: bool = False) -> None:
        self.get(name)
        if users:
            raise VolumeInUse(name, users)
        self.backend.delete(VOLUMES + name)
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
