"""The packages really in an image: read layer by layer from the content store.

Each layer's tar is streamed once; only the files that record packages are kept (dpkg's
status and status.d, busybox and its applet links, Python dist-info/egg-info metadata,
node_modules package.json and package-lock.json, Go build info of executables, and
os-release). Whiteouts of later layers remove what earlier ones recorded, as overlayfs
would, so the inventory is the image's final filesystem. Each package names the layer it
came from: for dpkg, the earliest layer from which on its status entry stayed unchanged.
"""

from __future__ import annotations

import contextlib
import email.parser
import io
import json
import posixpath
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from packageurl import PackageURL

from portside.errors import PortsideError
from portside.store.images import Image, ImageStore
from portside.trust.sbom import gobuildinfo

_GZIP = b"\x1f\x8b"
_ZSTD = b"\x28\xb5\x2f\xfd"
_BUSYBOX_VERSION = re.compile(rb"BusyBox v(\d+(?:\.\d+)+)")
_MAX_EXECUTABLE = 256 * 1024 * 1024


class InventoryError(PortsideError):
    """A layer could not be read."""


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    ecosystem: str  # the OSV ecosystem (Debian, PyPI, npm, Go) or "generic"
    purl: str
    layer: str  # digest of the layer blob it came from
    path: str  # the file in the image that records it
    source: str = ""  # Debian: the source package, which OSV's Debian advisories name
    source_version: str = ""
    licenses: str = ""
    notes: tuple[tuple[str, str], ...] = field(default=())


@dataclass(frozen=True)
class Distro:
    id: str = ""
    version_id: str = ""
    pretty_name: str = ""


@dataclass
class Inventory:
    image_digest: str  # the manifest digest
    config_digest: str
    layers: list[str]
    distro: Distro
    packages: list[Package]


@dataclass
class _Found:
    layer: int
    data: bytes = b""
    link: str = ""


def open_layer(stream: IO[bytes]) -> tarfile.TarFile:
    head = stream.read(4)
    rest = io.BufferedReader(_Prefixed(head, stream))
    if head.startswith(_GZIP):
        return tarfile.open(fileobj=rest, mode="r|gz")
    if head == _ZSTD:
        import zstandard

        return tarfile.open(fileobj=zstandard.ZstdDecompressor().stream_reader(rest), mode="r|")
    return tarfile.open(fileobj=rest, mode="r|")


class _Prefixed(io.RawIOBase):
    """A stream whose first bytes were already read to sniff its compression."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self.head, self.rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        if self.head:
            n = min(len(buf), len(self.head))
            buf[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        data = self.rest.read(len(buf))
        buf[: len(data)] = data
        return len(data)


def _interesting(path: str) -> bool:
    base = posixpath.basename(path)
    parent = posixpath.basename(posixpath.dirname(path))
    return (
        path in ("var/lib/dpkg/status", "etc/os-release", "usr/lib/os-release", "bin/busybox",
                 "usr/bin/busybox")
        or path.startswith("var/lib/dpkg/status.d/")
        or (base == "METADATA" and parent.endswith(".dist-info"))
        or (base == "PKG-INFO" and parent.endswith(".egg-info"))
        or (base.endswith(".egg-info") and ("site-packages" in path or "dist-packages" in path))
        or (base == "package.json" and "node_modules/" in path)
        or (base == "package-lock.json" and "node_modules/" not in path)
    )


def _remove(files: dict[str, _Found], path: str) -> None:
    for key in [k for k in files if k == path or k.startswith(path + "/")]:
        del files[key]


@contextlib.contextmanager
def read_layer(store: ImageStore, digest: str) -> Iterator[tarfile.TarFile]:
    """A layer blob as a tar stream; a corrupt one, even half-way, is an InventoryError."""
    import zlib

    try:
        with store.content.open(digest) as blob, open_layer(blob) as tar:
            yield tar
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise InventoryError(f"layer {digest}: cannot read it: {exc}") from exc


def collect(store: ImageStore, image: Image) -> Inventory:
    """The packages of `image`, read from its layers in the content store."""
    manifest = store.manifest(image)
    layers = [d.digest for d in manifest.layers]
    files: dict[str, _Found] = {}
    go: dict[str, tuple[int, gobuildinfo.BuildInfo]] = {}
    statuses: list[tuple[int, bytes]] = []  # every surviving dpkg status, oldest first
    for index, digest in enumerate(layers):
        with read_layer(store, digest) as tar:
            mine: dict[str, _Found] = {}
            for member in tar:
                path = posixpath.normpath(member.name.lstrip("/")).removeprefix("./")
                folder, base = posixpath.split(path)
                if base == ".wh..wh..opq":
                    _remove_under(files, folder)
                    go = {k: v for k, v in go.items() if not k.startswith(folder + "/")}
                    continue
                if base.startswith(".wh."):
                    gone = posixpath.join(folder, base[4:])
                    _remove(files, gone)
                    go = {k: v for k, v in go.items() if k != gone and not k.startswith(gone + "/")}
                    continue
                if member.isdir():
                    continue
                files.pop(path, None)
                go.pop(path, None)
                if member.islnk() or member.issym():
                    link = member.linkname.lstrip("/") if member.islnk() else posixpath.normpath(
                        posixpath.join(folder, member.linkname))
                    mine[path] = _Found(index, link=link)
                    continue
                if not member.isfile():
                    continue
                if _interesting(path):
                    f = tar.extractfile(member)
                    mine[path] = _Found(index, f.read() if f else b"")
                elif member.mode & 0o111 and 64 < member.size <= _MAX_EXECUTABLE:
                    f = tar.extractfile(member)
                    data = f.read() if f else b""
                    if data.startswith(b"\x7fELF") and (info := gobuildinfo.parse(data)):
                        go[path] = (index, info)
            files.update(mine)
            if (status := mine.get("var/lib/dpkg/status")) and status.data:
                statuses.append((index, status.data))
    statuses = [(i, d) for i, d in statuses if i <= files.get(
        "var/lib/dpkg/status", _Found(-1)).layer]
    distro = _distro(files)
    packages = [
        *_dpkg(files, statuses, layers, distro),
        *_busybox(files, layers),
        *_python(files, layers),
        *_npm(files, layers),
        *_golang(go, layers),
    ]
    return Inventory(image.manifest_digest, image.config_digest, layers, distro, packages)


def _remove_under(files: dict[str, _Found], folder: str) -> None:
    for key in [k for k in files if k.startswith(folder + "/")]:
        del files[key]


def _distro(files: dict[str, _Found]) -> Distro:
    found = files.get("etc/os-release")
    if found and found.link:
        found = files.get(found.link)
    found = found if found and found.data else files.get("usr/lib/os-release")
    if not found or not found.data:
        return Distro()
    fields: dict[str, str] = {}
    for line in found.data.decode(errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip("\"'")
    return Distro(fields.get("ID", ""), fields.get("VERSION_ID", ""), fields.get("PRETTY_NAME", ""))


def _paragraphs(data: bytes) -> Iterator[dict[str, str]]:
    from debian.deb822 import Deb822

    for para in Deb822.iter_paragraphs(data.decode("utf-8", errors="replace").splitlines()):
        yield {k: v for k, v in para.items()}


def _installed(data: bytes) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for para in _paragraphs(data):
        name, version = para.get("Package", ""), para.get("Version", "")
        if name and version and para.get("Status", "install ok installed").endswith(" installed"):
            arch = para.get("Architecture", "")
            found[f"{name}:{arch}" if arch not in ("", "all") else name] = para
    return found


def _deb(para: dict[str, str], layer: str, path: str, distro: Distro) -> Package:
    name, version, arch = para["Package"], para["Version"], para.get("Architecture", "")
    source, _, rest = para.get("Source", name).partition(" ")
    source_version = rest.strip("() ") or version
    qualifiers = {"arch": arch} if arch else {}
    if distro.id:
        qualifiers["distro"] = f"{distro.id}-{distro.version_id}" if distro.version_id else distro.id
    purl = PackageURL("deb", distro.id or "debian", name, version, qualifiers or None)
    return Package(name, version, "Debian", purl.to_string(), layer, path, source, source_version)


def _dpkg(files: dict[str, _Found], statuses: list[tuple[int, bytes]], layers: list[str],
          distro: Distro) -> Iterator[Package]:
    if statuses:
        history = [(i, _installed(d)) for i, d in statuses]
        for key, para in history[-1][1].items():
            first = history[-1][0]
            for index, packages in reversed(history[:-1]):
                old = packages.get(key)
                if not old or old.get("Version") != para["Version"]:
                    break
                first = index
            yield _deb(para, layers[first], "var/lib/dpkg/status", distro)
    for path, found in sorted(files.items()):  # distroless: one file per package
        if path.startswith("var/lib/dpkg/status.d/") and found.data and not path.endswith(".md5sums"):
            for para in _installed(found.data).values():
                yield _deb(para, layers[found.layer], path, distro)


def _busybox(files: dict[str, _Found], layers: list[str]) -> Iterator[Package]:
    found = files.get("bin/busybox") or files.get("usr/bin/busybox")
    if found and found.link:
        found = files.get(found.link)
    if not found or not (match := _BUSYBOX_VERSION.search(found.data)):
        return
    applets = sorted(posixpath.basename(p) for p, f in files.items()
                     if f.link in ("bin/busybox", "/bin/busybox"))
    version = match.group(1).decode()
    yield Package("busybox", version, "generic", PackageURL("generic", None, "busybox",
                  version).to_string(), layers[found.layer], "bin/busybox",
                  licenses="GPL-2.0-only", notes=(("applets", " ".join(applets)),))


def _python(files: dict[str, _Found], layers: list[str]) -> Iterator[Package]:
    parser = email.parser.BytesHeaderParser()
    for path, found in sorted(files.items()):
        base = posixpath.basename(path)
        is_meta = base in ("METADATA", "PKG-INFO") or base.endswith(".egg-info")
        if not found.data or not is_meta or "node_modules/" in path:
            continue
        meta = parser.parsebytes(found.data)
        name, version = meta.get("Name", ""), meta.get("Version", "")
        if name and version:
            yield Package(name, version, "PyPI", PackageURL("pypi", None, name.lower(),
                          version).to_string(), layers[found.layer], path,
                          licenses=str(meta.get("License-Expression") or ""))


def _npm(files: dict[str, _Found], layers: list[str]) -> Iterator[Package]:
    seen: set[tuple[str, str]] = set()
    for path, found in sorted(files.items()):
        if not found.data or not path.endswith(("/package.json", "/package-lock.json")):
            continue
        try:
            doc = json.loads(found.data)
        except ValueError:
            continue
        if not isinstance(doc, dict):
            continue
        entries: list[tuple[str, str]] = []
        if path.endswith("package-lock.json"):
            for key, item in (doc.get("packages") or {}).items():
                if key and isinstance(item, dict) and "node_modules/" in key:
                    entries.append((key.rpartition("node_modules/")[2], str(item.get("version", ""))))
            entries.extend(_lock_v1(doc.get("dependencies") or {}) if not entries else [])
        else:
            entries.append((str(doc.get("name", "")), str(doc.get("version", ""))))
        for name, version in entries:
            if not name or not version or (name, version) in seen:
                continue
            seen.add((name, version))
            scope, _, short = name.rpartition("/")
            yield Package(name, version, "npm", PackageURL("npm", scope or None, short,
                          version).to_string(), layers[found.layer], path,
                          licenses=str(doc.get("license", "")) if not path.endswith("lock.json") else "")


def _lock_v1(deps: object) -> Iterator[tuple[str, str]]:
    if isinstance(deps, dict):
        for name, item in deps.items():
            if isinstance(item, dict):
                yield name, str(item.get("version", ""))
                yield from _lock_v1(item.get("dependencies") or {})


def _golang(go: dict[str, tuple[int, gobuildinfo.BuildInfo]], layers: list[str]) -> Iterator[Package]:
    for path, (index, info) in sorted(go.items()):
        stdlib = info.go_version.removeprefix("go")
        modules = [gobuildinfo.GoModule("stdlib", stdlib)] if stdlib else []
        if info.main and info.main.version not in ("", "(devel)"):
            modules.append(info.main)
        modules.extend(info.deps)
        for module in modules:
            namespace, _, name = module.path.rpartition("/")
            yield Package(module.path, module.version.removeprefix("v"), "Go",
                          PackageURL("golang", namespace or None, name, module.version).to_string(),
                          layers[index], path)
