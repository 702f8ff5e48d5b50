"""`docker import`: a root filesystem tarball (plain, gzip or zstd) as a one-layer image.

The stream goes once into the content store as it arrives: a compressed tarball is kept as
it is (its diff_id is hashed from the decompressed bytes on the way, `DiffHasher`), a plain
one becomes an uncompressed layer. `changes` are the Dockerfile instructions `docker import
-c` allows (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR).
"""

from __future__ import annotations

import json
import shlex
from typing import IO, Any

from portside.errors import InvalidArgument
from portside.oci import mediatypes as mt
from portside.store.archive import DiffHasher, sniff
from portside.store.imagebuilder import new_image
from portside.store.images import Image, ImageStore
from portside.store.layers import LayerResult

CHUNK = 1 << 20
_TAR_MAGIC_AT = 257  # POSIX ustar header: "ustar" at offset 257 of the first block


class NotATarball(InvalidArgument):
    def __init__(self, reason: str) -> None:
        super().__init__(f"the imported data is not a tarball: {reason}")


def _words(value: str) -> list[str]:
    value = value.strip()
    if value.startswith("["):
        try:
            doc = json.loads(value)
        except ValueError:
            doc = None
        if isinstance(doc, list) and all(isinstance(x, str) for x in doc):
            return list(doc)
    return ["/bin/sh", "-c", value]


def _pairs(value: str) -> dict[str, str]:
    out: dict[str, str] = {}
    words = shlex.split(value)
    if len(words) == 2 and "=" not in words[0]:  # `ENV KEY value`, the old form
        return {words[0]: words[1]}
    for word in words:
        key, sep, val = word.partition("=")
        if not sep:
            raise InvalidArgument(f"invalid change {value!r}: expected KEY=VALUE")
        out[key] = val
    return out


def apply_changes(config: dict[str, Any], changes: list[str]) -> None:
    """Apply `docker import --change` instructions to an image's runtime config."""
    for change in changes:
        word, _, value = change.strip().partition(" ")
        op = word.upper()
        if op == "CMD":
            config["Cmd"] = _words(value)
        elif op == "ENTRYPOINT":
            config["Entrypoint"] = _words(value)
        elif op == "ENV":
            env = [e for e in config.get("Env") or []]
            for key, val in _pairs(value).items():
                env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={val}"]
            config["Env"] = env
        elif op == "LABEL":
            config["Labels"] = {**(config.get("Labels") or {}), **_pairs(value)}
        elif op == "EXPOSE":
            ports = dict(config.get("ExposedPorts") or {})
            for port in value.split():
                ports[port if "/" in port else f"{port}/tcp"] = {}
            config["ExposedPorts"] = ports
        elif op == "VOLUME":
            vols = dict(config.get("Volumes") or {})
            for path in _words(value) if value.strip().startswith("[") else value.split():
                vols[path] = {}
            config["Volumes"] = vols
        elif op == "USER":
            config["User"] = value.strip()
        elif op == "WORKDIR":
            config["WorkingDir"] = value.strip()
        else:
            raise InvalidArgument(f"{word} is not a valid change command")


def import_layer(store: ImageStore, source: IO[bytes], target: str | None, message: str,
                 changes: list[str]) -> Image:
    """Write the tarball as a layer and record an image of it under `target` (if given)."""
    config: dict[str, Any] = {}
    apply_changes(config, changes)
    hasher = DiffHasher()
    with store.importing(), store.content.writer() as writer:
        head = source.read(CHUNK)
        if not head:
            raise NotATarball("it is empty")
        compression = sniff(head)
        if compression not in ("", "gzip", "zstd"):
            raise NotATarball(f"{compression} compression is not supported for layers")
        if not compression and head[_TAR_MAGIC_AT:_TAR_MAGIC_AT + 5] != b"ustar":
            raise NotATarball("no tar header at its start")
        chunk = head
        while chunk:
            writer.write(chunk)
            if compression:
                hasher.update(chunk)
            chunk = source.read(CHUNK)
        if compression:
            try:
                diff_id = hasher.finish()
            except ValueError as exc:
                raise NotATarball(str(exc)) from None
        digest = writer.commit()
        if not compression:
            diff_id = digest
        media_type = {"": mt.OCI_LAYER, "gzip": mt.OCI_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD}
        assert diff_id is not None
        layer = LayerResult(digest, writer.size, diff_id, media_type[compression], 0)
        history = [{"created_by": "", "comment": message or "Imported from -"}]
        return new_image(store, [layer], config, history, tags=[target] if target else [])
