"""`save`: write images as an OCI image layout tar or a `docker save` archive, streaming.

The OCI format is also a docker archive (a `manifest.json` naming the same blobs, as Docker
25+ writes), so `docker load` of any version and podman read it, whatever it holds.

Output is deterministic (members sorted, fixed owner and mtime) so saving the same images
twice gives the same bytes. Blobs go out straight from the content store; the docker format
wants uncompressed layers, so compressed ones are decompressed through a temporary file
(tar needs each member's size up front), checked against the config's diff_id on the way.
A path is written to a temporary file and renamed, so a failed save leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from portside.errors import DigestMismatch, ImageUnknown, InvalidArgument, PortsideError
from portside.oci import digest as digests
from portside.oci import mediatypes as mt
from portside.oci import reference as refs
from portside.oci.model import ImageConfig, Manifest, canonical_json
from portside.store.archive_common import sniff
from portside.store.content import CHUNK
from portside.store.images import Image, ImageStore

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
_MTIME = 0
OCI_LAYOUT = canonical_json({"imageLayoutVersion": "1.0.0"})


@dataclass
class _Selected:
    image: Image
    names: list[refs.Reference]


def _is_id(name: str, image: Image) -> bool:
    bare = name.removeprefix("sha256:")
    return len(bare) >= 3 and any(
        d.removeprefix("sha256:").startswith(bare)
        for d in (image.config_digest, image.manifest_digest)
    )


def select(store: ImageStore, names: list[str]) -> list[_Selected]:
    """The images to save and the names each is saved under, as `docker save` picks them.

    `repo:tag` saves that tag; a bare `repo` saves every tag of the repository; an id or a
    digest reference saves the image without names.
    """
    if not names:
        raise InvalidArgument("save needs at least one image name")
    chosen: dict[str, _Selected] = {}

    def pick(image: Image, ref: refs.Reference | None) -> None:
        entry = chosen.setdefault(image.manifest_digest, _Selected(image, []))
        if ref is not None and ref not in entry.names:
            entry.names.append(ref)

    for name in names:
        image: Image | None = None
        with contextlib.suppress(ImageUnknown):
            image = store.get(name)
        if image is not None and _is_id(name, image):
            pick(image, None)
            continue
        ref = refs.parse(name)
        if not ref.tag and not ref.digest:  # a bare repository: all of its tags
            tagged = sorted(
                (
                    (refs.parse(t), other)
                    for other in store.list()
                    for t in other.tags
                    if refs.parse(t).repository == ref.repository
                ),
                key=lambda pair: str(pair[0]),
            )
            for tag_ref, other in tagged:
                pick(other, tag_ref)
            if tagged:
                continue
        if image is None:
            raise ImageUnknown(name)
        pick(image, ref if ref.tag else None)
    return list(chosen.values())


class _TarOut:
    """A streaming tar writer with fixed metadata, creating parent directories once."""

    def __init__(self, fileobj: IO[bytes]) -> None:
        self.tar = tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT)  # noqa: SIM115
        self.dirs: set[str] = set()

    def _info(self, name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mode = mode
        info.size = size
        info.mtime = _MTIME
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    def _parents(self, name: str) -> None:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self.dirs:
                self.dirs.add(d)
                self.tar.addfile(self._info(d + "/", tarfile.DIRTYPE, 0o755))

    def add(self, name: str, size: int, fileobj: IO[bytes]) -> None:
        self._parents(name)
        self.tar.addfile(self._info(name, tarfile.REGTYPE, 0o644, size), fileobj)

    def add_bytes(self, name: str, data: bytes) -> None:
        import io

        self.add(name, len(data), io.BytesIO(data))

    def close(self) -> None:
        self.tar.close()

    def abandon(self) -> None:
        """Give up without writing the archive's end: the output is broken or being discarded.

        Otherwise tarfile's stream flushes its buffer into the broken output when collected.
        """
        tar: Any = self.tar
        tar.fileobj.closed = True  # tarfile's private _Stream: makes its close() a no-op
        tar.closed = True


def _write(write: Any, store: ImageStore, selected: list[_Selected], fileobj: IO[bytes]) -> None:
    out = _TarOut(fileobj)
    try:
        write(store, selected, out)
    except BaseException:
        out.abandon()
        raise
    out.close()


def _blob_path(digest: str) -> str:
    algorithm, _, hexpart = digests.validate(digest).partition(":")
    return f"blobs/{algorithm}/{hexpart}"


def _platform(config: ImageConfig) -> dict[str, str]:
    p = config.platform
    out = {"architecture": p.architecture, "os": p.os}
    if p.variant:
        out["variant"] = p.variant
    return out


def _write_oci(store: ImageStore, selected: list[_Selected], out: _TarOut) -> None:
    blobs: set[str] = set()
    entries: list[dict[str, Any]] = []
    for sel in selected:
        manifest = store.manifest(sel.image)
        blobs.update([sel.image.manifest_digest, manifest.config.digest])
        blobs.update(layer.digest for layer in manifest.layers)
        base: dict[str, Any] = {
            "mediaType": manifest.media_type,
            "digest": sel.image.manifest_digest,
            "size": store.content.size(sel.image.manifest_digest),
            "platform": _platform(store.config_of(manifest)),
        }
        if not sel.names:
            entries.append(base)
        for ref in sel.names:
            annotations = {ANNOTATION_CONTAINERD_NAME: str(ref), ANNOTATION_REF_NAME: ref.tag or ""}
            entries.append({**base, "annotations": annotations})
    for digest in sorted(blobs):
        with store.content.open(digest) as f:
            out.add(_blob_path(digest), store.content.size(digest), f)
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries}
    out.add_bytes("index.json", canonical_json(index))
    # Also a docker-archive view of the same blobs, as Docker 25+ writes: `docker load`
    # before 25 reads only manifest.json, and podman falls back to it for an index with
    # more than one entry (several images or tags), which its oci-archive reader refuses.
    docker_entries, repositories, _ = _docker_manifest(store, selected, uncompressed=False)
    _write_docker_metadata(out, docker_entries, repositories)
    out.add_bytes("oci-layout", OCI_LAYOUT)


def _uncompressed_layer(
    store: ImageStore, digest: str, diff_id: str, scratch: Path
) -> tuple[IO[bytes], int]:
    """The layer as an uncompressed tar (the blob itself, or a temporary decompressed copy)."""
    blob = store.content.open(digest)
    try:
        compression = sniff(blob.read(6))
        blob.seek(0)
        if compression == "":
            if digest != diff_id:
                raise DigestMismatch(diff_id, digest, f"layer {digest}")
            return blob, store.content.size(digest)
        reader: Any
        if compression == "gzip":
            import gzip

            reader = gzip.GzipFile(fileobj=blob, mode="rb")
        elif compression == "zstd":
            import zstandard

            reader = zstandard.ZstdDecompressor().stream_reader(blob, read_across_frames=True)
        else:
            raise InvalidArgument(f"layer {digest}: unsupported compression {compression}")
        tmp = tempfile.TemporaryFile(dir=scratch, prefix="save-")  # noqa: SIM115
        hasher = hashlib.sha256()
        for chunk in iter(lambda: reader.read(CHUNK), b""):
            hasher.update(chunk)
            tmp.write(chunk)
        actual = f"sha256:{hasher.hexdigest()}"
        if actual != diff_id:
            tmp.close()
            raise DigestMismatch(diff_id, actual, f"layer {digest} uncompressed")
        size = tmp.tell()
        tmp.seek(0)
        blob.close()
        return tmp, size
    except BaseException:
        blob.close()
        raise


def _docker_manifest(
    store: ImageStore, selected: list[_Selected], uncompressed: bool
) -> tuple[list[dict[str, Any]], dict[str, dict[str, str]], dict[str, tuple[str, str | None]]]:
    """`manifest.json` entries, the `repositories` file, and the members they name.

    Members map a path to (blob digest, diff_id): the diff_id is set for a layer that must
    go out uncompressed, under its diff_id, as `docker save` writes layers.
    """
    entries: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    members: dict[str, tuple[str, str | None]] = {}
    for sel in selected:
        manifest: Manifest = store.manifest(sel.image)
        config = store.config_of(manifest)
        members[_blob_path(manifest.config.digest)] = (manifest.config.digest, None)
        layer_paths = []
        for layer, diff_id in zip(manifest.layers, config.diff_ids, strict=True):
            path = _blob_path(diff_id if uncompressed else layer.digest)
            members[path] = (layer.digest, diff_id if uncompressed else None)
            layer_paths.append(path)
        # Full names: podman reads a familiar "busybox:latest" as localhost/busybox; docker
        # normalises either form to the same name.
        tags = [str(ref) for ref in sel.names]
        entries.append(
            {
                "Config": _blob_path(manifest.config.digest),
                "RepoTags": tags or None,
                "Layers": layer_paths,
            }
        )
        for ref in sel.names:
            if config.diff_ids and ref.tag:
                top = digests.encoded(config.diff_ids[-1])
                repositories.setdefault(ref.familiar_repository, {})[ref.tag] = top
    return entries, repositories, members


def _write_docker_metadata(
    out: _TarOut, entries: list[dict[str, Any]], repositories: dict[str, dict[str, str]]
) -> None:
    out.add_bytes("manifest.json", canonical_json(entries))
    if repositories:
        out.add_bytes("repositories", canonical_json(repositories))


def _write_docker(store: ImageStore, selected: list[_Selected], out: _TarOut) -> None:
    entries, repositories, members = _docker_manifest(store, selected, uncompressed=True)
    for path in sorted(members):
        blob_digest, layer_diff_id = members[path]
        if layer_diff_id is None:
            with store.content.open(blob_digest) as f:
                out.add(path, store.content.size(blob_digest), f)
            continue
        scratch = store.content.ingest_dir
        layer_file, size = _uncompressed_layer(store, blob_digest, layer_diff_id, scratch)
        with layer_file:
            out.add(path, size, layer_file)
    _write_docker_metadata(out, entries, repositories)


def save_archive(
    store: ImageStore, names: list[str], target: str | Path | IO[bytes], fmt: str
) -> None:
    with store.importing():  # keep GC from sweeping blobs while they are being written out
        selected = select(store, names)
        write = _write_oci if fmt == "oci" else _write_docker
        if not isinstance(target, str | Path):
            _write(write, store, selected, target)
            return
        path = Path(target)
        if path.is_dir():
            raise InvalidArgument(f"cannot write {path}: it is a directory")
        try:
            fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        except OSError as exc:
            raise InvalidArgument(f"cannot write {path}: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "wb") as f:
                _write(write, store, selected, f)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp_name, 0o644)
            os.replace(tmp_name, path)
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            if isinstance(exc, OSError) and exc.strerror:  # disk full, quota, I/O error
                raise PortsideError(f"cannot write {path}: {exc.strerror}") from None
            raise
