"""A read-only view of a stage's filesystem, from its layer blobs, without unpacking it all.

The builder needs little of a stage's tree: whether a destination exists and is a directory
(COPY, WORKDIR), `/etc/passwd` and `/etc/group` for `--chown=name`, and the files that
`COPY --from` takes. Layers are read as tar streams (whiteouts applied, image-spec
layer.md "Whiteouts"); header indexes are kept per diff_id for the life of the process.
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import shutil
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from portside.oci import mediatypes as mt
from portside.store.content import ContentStore

WH = ".wh."
OPAQUE = ".wh..wh..opq"


@dataclass(frozen=True)
class LayerRef:
    """A layer as a manifest and config name it."""

    digest: str
    size: int
    diff_id: str
    media_type: str

    def to_json(self) -> dict[str, object]:
        return {
            "digest": self.digest,
            "size": self.size,
            "diff_id": self.diff_id,
            "media_type": self.media_type,
        }

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> LayerRef:
        return cls(
            str(obj["digest"]), int(str(obj["size"])), str(obj["diff_id"]), str(obj["media_type"])
        )


@dataclass(frozen=True)
class Meta:
    type: bytes  # tarfile type
    mode: int
    uid: int
    gid: int
    linkname: str = ""

    @property
    def is_dir(self) -> bool:
        return self.type == tarfile.DIRTYPE


IMPLICIT_DIR = Meta(tarfile.DIRTYPE, 0o755, 0, 0)


@dataclass
class _Index:
    entries: dict[str, Meta]
    whiteouts: set[str]
    opaque: set[str]


_INDEXES: dict[str, _Index] = {}


def remember_index(diff_id: str, infos: list[tarfile.TarInfo]) -> None:
    """Index a layer just written from its headers, so nothing has to read it back."""
    index = _Index({}, set(), set())
    for m in infos:
        _add_to_index(index, m)
    _INDEXES[diff_id] = index


def _add_to_index(index: _Index, m: tarfile.TarInfo) -> None:
    name = _norm(m.name)
    base = posixpath.basename(name)
    parent = posixpath.dirname(name)
    if base == OPAQUE:
        index.opaque.add(parent)
    elif base.startswith(WH):
        index.whiteouts.add(posixpath.join(parent, base[len(WH) :]))
    else:
        link = m.linkname if m.issym() else (_norm(m.linkname) if m.islnk() else "")
        index.entries[name] = Meta(m.type, m.mode, m.uid, m.gid, link)
        # A layer may hold a file without entries for its directories: they exist anyway.
        while parent and parent not in index.entries:
            index.entries[parent] = IMPLICIT_DIR
            parent = posixpath.dirname(parent)


def _norm(name: str) -> str:
    return posixpath.normpath("/" + name).lstrip("/")


def open_layer(content: ContentStore, layer: LayerRef) -> IO[bytes]:
    """The uncompressed tar stream of a layer blob."""
    raw = content.open(layer.digest)
    compression = mt.LAYERS.get(layer.media_type, "gzip")
    if compression == "gzip":
        import gzip

        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)
    return raw


class StageFS:
    def __init__(self, content: ContentStore, layers: list[LayerRef]) -> None:
        self.content = content
        self.layers = layers

    def _index(self, layer: LayerRef) -> _Index:
        found = _INDEXES.get(layer.diff_id)
        if found is not None:
            return found
        index = _Index({}, set(), set())
        with (
            open_layer(self.content, layer) as stream,
            tarfile.open(fileobj=stream, mode="r|") as tar,
        ):
            for m in tar:
                _add_to_index(index, m)
        _INDEXES[layer.diff_id] = index
        return index

    def _lookup_raw(self, path: str) -> Meta | None:
        ancestors = []
        p = path
        while p:
            p = posixpath.dirname(p)
            ancestors.append(p)
        for layer in reversed(self.layers):
            index = self._index(layer)
            if path in index.entries:
                return index.entries[path]
            if path in index.whiteouts or any(a in index.whiteouts for a in ancestors if a):
                return None
            if any(a in index.opaque for a in ancestors):
                return None
        return Meta(tarfile.DIRTYPE, 0o755, 0, 0) if path == "" else None

    def resolve(self, path: str, follow_last: bool = True) -> str:
        """`path` (absolute or not) with symlinks in it resolved inside the stage's root."""
        parts = [p for p in _norm(path).split("/") if p]
        done: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            current = "/".join([*done, part])
            meta = self._lookup_raw(current)
            if meta and meta.type == tarfile.SYMTYPE and (parts or follow_last) and hops < 40:
                hops += 1
                target = meta.linkname
                base = [] if target.startswith("/") else done
                parts = [p for p in _norm("/".join([*base, target])).split("/") if p] + parts
                done = []
                continue
            done.append(part)
        return "/".join(done)

    def lookup(self, path: str) -> Meta | None:
        """What is at `path` in the merged tree (symlinks followed), or None."""
        return self._lookup_raw(self.resolve(path))

    def read_file(self, path: str, limit: int = 4 << 20) -> bytes | None:
        """A small file's content (e.g. /etc/passwd), or None when absent."""
        target = self.resolve(path)
        if self._lookup_raw(target) is None:
            return None
        for layer in reversed(self.layers):
            if target not in self._index(layer).entries:
                continue
            with (
                open_layer(self.content, layer) as stream,
                tarfile.open(fileobj=stream, mode="r|") as tar,
            ):
                for m in tar:
                    if _norm(m.name) == target and m.isreg():
                        f = tar.extractfile(m)
                        return f.read(limit) if f else b""
            return None
        return None

    def export(self, source: str, into: Path) -> None:
        """Materialise the subtree at `source` (as merged) under the directory `into`."""
        src = self.resolve(source)
        into.parent.mkdir(parents=True, exist_ok=True)
        for layer in self.layers:
            index = self._index(layer)
            for gone in [*index.whiteouts, *index.opaque]:
                rel = _relative(gone, src)
                if rel is None:
                    continue
                target = into / rel if rel else into
                if gone in index.opaque:
                    for child in list(target.iterdir()) if target.is_dir() else []:
                        _remove(child)
                else:
                    _remove(target)
            if not any(_relative(n, src) is not None for n in index.entries):
                continue
            with (
                open_layer(self.content, layer) as stream,
                tarfile.open(fileobj=stream, mode="r|") as tar,
            ):
                for m in tar:
                    name = _norm(m.name)
                    rel = _relative(name, src)
                    if rel is None or posixpath.basename(name).startswith(WH):
                        continue
                    _extract(tar, m, into, rel, src)


def _relative(name: str, top: str) -> str | None:
    if not top:
        return name
    if name == top:
        return ""
    return name[len(top) + 1 :] if name.startswith(top + "/") else None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _extract(tar: tarfile.TarFile, m: tarfile.TarInfo, into: Path, rel: str, top: str) -> None:
    """Write one member at `into/rel`; names are normalised, so nothing escapes `into`."""
    target = into / rel if rel else into
    if rel:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not m.isdir() and (target.exists() or target.is_symlink()):
            _remove(target)
    if m.isdir():
        if target.is_symlink() or (target.exists() and not target.is_dir()):
            _remove(target)
        target.mkdir(exist_ok=True)
    elif m.isreg():
        f = tar.extractfile(m)
        with open(target, "wb") as out:
            shutil.copyfileobj(f or io.BytesIO(), out, 1 << 20)
    elif m.issym():
        os.symlink(m.linkname, target)
    elif m.islnk():
        linked = _relative(_norm(m.linkname), top)
        if linked is None or not (into / linked).exists():
            return
        os.link(into / linked, target)
    else:
        return  # devices and fifos are not copied between stages
    with contextlib.suppress(OSError):
        os.lchown(target, m.uid, m.gid)
    if not m.issym():
        os.chmod(target, stat.S_IMODE(m.mode))
        os.utime(target, (m.mtime, m.mtime))


def walk_tree(top: Path) -> Iterator[tuple[str, Path, os.stat_result]]:
    """`top` and everything below, sorted by name: (relative path, path, lstat)."""
    st = os.lstat(top)
    yield "", top, st
    if stat.S_ISDIR(st.st_mode):
        stack = [("", top)]
        while stack:
            prefix, d = stack.pop()
            with os.scandir(d) as it:
                names = sorted((e.name for e in it), key=os.fsencode, reverse=True)
            for name in reversed(names):
                rel = f"{prefix}{name}"
                p = d / name
                s = os.lstat(p)
                yield rel, p, s
                if stat.S_ISDIR(s.st_mode):
                    stack.append((rel + "/", p))
