"""An image's final filesystem, as metadata: every path's type, mode and owner after the
layers are stacked (whiteouts and opaque directories applied, as overlayfs would), with
symlinks resolved inside the image; the content of a few asked-for files."""

from __future__ import annotations

import posixpath
import stat
import tarfile
from dataclasses import dataclass

from portside.store.images import Image, ImageStore
from portside.trust.sbom.inventory import read_layer


@dataclass(frozen=True)
class Entry:
    kind: str  # "file", "dir", "symlink", "hardlink", "other"
    mode: int  # permission bits with the file type, as os.stat's st_mode
    uid: int
    gid: int
    link: str  # a symlink's or hardlink's target
    layer: int


def _kind(m: tarfile.TarInfo) -> tuple[str, int]:
    if m.isdir():
        return "dir", stat.S_IFDIR
    if m.issym():
        return "symlink", stat.S_IFLNK
    if m.islnk():
        return "hardlink", stat.S_IFREG
    if m.isfile():
        return "file", stat.S_IFREG
    return "other", 0


class Tree:
    def __init__(self, store: ImageStore, image: Image) -> None:
        self.store = store
        self.layers = [d.digest for d in store.manifest(image).layers]
        self.entries: dict[str, Entry] = {}
        for index, digest in enumerate(self.layers):
            with read_layer(store, digest) as tar:
                for m in tar:
                    path = posixpath.normpath("/" + m.name.lstrip("/").removeprefix("./"))
                    folder, base = posixpath.split(path)
                    if base == ".wh..wh..opq":
                        self._drop_under(folder, keep_layer=index)
                    elif base.startswith(".wh."):
                        gone = posixpath.join(folder, base[4:])
                        self.entries.pop(gone, None)
                        self._drop_under(gone)
                    else:
                        kind, bits = _kind(m)
                        link = m.linkname if kind == "symlink" else (
                            "/" + m.linkname.lstrip("/") if kind == "hardlink" else "")
                        self.entries[path] = Entry(kind, bits | (m.mode & 0o7777), m.uid,
                                                   m.gid, link, index)
        # a layer may name files without their directories: those exist all the same
        self.dirs = {posixpath.dirname(p) for p in self.entries}
        for d in list(self.dirs):
            while d not in ("/", ""):
                d = posixpath.dirname(d)
                self.dirs.add(d)

    def _drop_under(self, folder: str, keep_layer: int = -1) -> None:
        prefix = folder.rstrip("/") + "/"
        for key in [k for k, e in self.entries.items()
                    if k.startswith(prefix) and e.layer != keep_layer]:
            del self.entries[key]

    def resolve(self, path: str, hops: int = 40) -> str | None:
        """The path with every symlink in it followed inside the image; None if dangling."""
        parts = [p for p in posixpath.normpath("/" + path).split("/") if p]
        current = "/"
        while parts and hops > 0:
            candidate = posixpath.join(current, parts.pop(0))
            entry = self.entries.get(candidate)
            if entry is not None and entry.kind == "symlink":
                hops -= 1
                target = entry.link
                base = "/" if target.startswith("/") else current
                parts = [p for p in posixpath.normpath(posixpath.join(base, target)).split("/")
                         if p] + parts
                current = "/"
                continue
            if entry is None and candidate not in self.dirs:
                return None
            current = candidate
        return current if hops > 0 else None

    def get(self, path: str) -> Entry | None:
        resolved = self.resolve(path)
        if resolved is None:
            return None
        if resolved not in self.entries and resolved in self.dirs:  # implied by its files
            return Entry("dir", stat.S_IFDIR | 0o755, 0, 0, "", -1)
        return self.entries.get(resolved)

    def read(self, path: str) -> bytes | None:
        """A regular file's content (a hardlink's target's), from the layer that wrote it."""
        resolved = self.resolve(path)
        entry = self.entries.get(resolved) if resolved else None
        if entry is None or entry.kind not in ("file", "hardlink"):
            return None
        if entry.kind == "hardlink":
            return self.read(entry.link)
        with read_layer(self.store, self.layers[entry.layer]) as tar:
            for m in tar:
                if posixpath.normpath("/" + m.name.lstrip("/").removeprefix("./")) == resolved:
                    f = tar.extractfile(m)
                    return f.read() if f else b""
        return None
