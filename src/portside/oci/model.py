"""Descriptors, manifests, indexes and image configs, parsed and checked from their JSON.

Parsing never trusts its input: every field is type-checked and every digest validated,
and errors say which document and which field is wrong. The raw bytes of a document are
kept by the caller: they, not a re-serialisation, are what its digest covers.
"""

from __future__ import annotations

import json
import platform as _platform
from dataclasses import dataclass, field
from typing import Any

from portside.errors import InvalidArgument
from portside.oci import digest as digests
from portside.oci import mediatypes as mt

MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # distribution-spec: registries SHOULD accept at least 4 MiB


class InvalidDocument(InvalidArgument):
    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")


def canonical_json(obj: Any) -> bytes:
    """The bytes portside writes for a JSON document: compact, keys sorted, so digests are stable."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def load_json(data: bytes, where: str) -> dict[str, Any]:
    if len(data) > MAX_MANIFEST_BYTES:
        raise InvalidDocument(where, f"document larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidDocument(where, f"not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise InvalidDocument(where, "not a JSON object")
    return obj


def _get(obj: dict[str, Any], key: str, kind: type, where: str, required: bool = True) -> Any:
    value = obj.get(key)
    if value is None:
        if required:
            raise InvalidDocument(where, f"missing field {key!r}")
        return None
    # bool is an int in Python; a size of `true` is still wrong.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidDocument(where, f"field {key!r} must be {kind.__name__}")
    return value


def _string_map(obj: dict[str, Any], key: str, where: str) -> dict[str, str]:
    value = _get(obj, key, dict, where, required=False) or {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InvalidDocument(where, f"{key!r} must map strings to strings")
    return dict(value)


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text


_MACHINE_TO_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}


def host_platform() -> Platform:
    machine = _platform.machine()
    arch = _MACHINE_TO_GOARCH.get(machine, machine)
    return Platform("linux", arch, "v8" if arch == "arm64" else "")


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    artifact_type: str | None = None
    urls: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, obj: Any, where: str) -> Descriptor:
        if not isinstance(obj, dict):
            raise InvalidDocument(where, "descriptor is not an object")
        media_type = _get(obj, "mediaType", str, where)
        digest = digests.validate(_get(obj, "digest", str, where), where)
        size = _get(obj, "size", int, where)
        if size < 0:
            raise InvalidDocument(where, "negative size")
        plat = None
        if (p := _get(obj, "platform", dict, where, required=False)) is not None:
            plat = Platform(
                _get(p, "os", str, where),
                _get(p, "architecture", str, where),
                _get(p, "variant", str, where, required=False) or "",
            )
        urls = _get(obj, "urls", list, where, required=False) or []
        return cls(
            media_type,
            digest,
            size,
            _string_map(obj, "annotations", where),
            plat,
            _get(obj, "artifactType", str, where, required=False),
            tuple(str(u) for u in urls),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform:
            out["platform"] = {"os": self.platform.os, "architecture": self.platform.architecture}
            if self.platform.variant:
                out["platform"]["variant"] = self.platform.variant
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.urls:
            out["urls"] = list(self.urls)
        return out


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: dict[str, str]
    subject: Descriptor | None = None
    artifact_type: str | None = None

    @property
    def is_image(self) -> bool:
        """True for a runnable image (an image config), False for other artifacts."""
        return self.config.media_type in mt.CONFIGS

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "config": self.config.to_json(),
            "layers": [layer.to_json() for layer in self.layers],
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.subject:
            out["subject"] = self.subject.to_json()
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out


@dataclass(frozen=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]
    annotations: dict[str, str]
    subject: Descriptor | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "manifests": [m.to_json() for m in self.manifests],
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.subject:
            out["subject"] = self.subject.to_json()
        return out

    def for_platform(self, want: Platform | None = None) -> Descriptor | None:
        """The manifest for `want` (the host by default), as `docker pull` picks it."""
        want = want or host_platform()
        candidates = [
            m
            for m in self.manifests
            if m.media_type in mt.MANIFESTS
            and m.platform is not None
            and (m.platform.os, m.platform.architecture) == (want.os, want.architecture)
        ]
        exact = [m for m in candidates if m.platform and m.platform.variant == want.variant]
        best = exact or candidates
        return best[0] if best else None


def parse_document(data: bytes, where: str, media_type: str | None = None) -> Manifest | Index:
    """Parse a manifest or an index; `media_type` is what the transport said (may be absent)."""
    obj = load_json(data, where)
    if obj.get("schemaVersion") != 2:
        raise InvalidDocument(where, "schemaVersion must be 2")
    declared = _get(obj, "mediaType", str, where, required=False)
    if declared and media_type and declared != media_type:
        raise InvalidDocument(where, f"mediaType {declared!r} does not match {media_type!r}")
    kind = declared or media_type
    if kind is None:  # OCI allows an absent mediaType: tell the two apart by their fields
        kind = mt.OCI_INDEX if "manifests" in obj else mt.OCI_MANIFEST
    subject = None
    if (s := obj.get("subject")) is not None:
        subject = Descriptor.from_json(s, f"{where} subject")
    annotations = _string_map(obj, "annotations", where)
    if kind in mt.INDEXES:
        entries = _get(obj, "manifests", list, where)
        return Index(
            kind,
            tuple(Descriptor.from_json(m, f"{where} manifests[{i}]") for i, m in enumerate(entries)),
            annotations,
            subject,
        )
    if kind in mt.MANIFESTS:
        layers = _get(obj, "layers", list, where)
        return Manifest(
            kind,
            Descriptor.from_json(_get(obj, "config", dict, where), f"{where} config"),
            tuple(Descriptor.from_json(x, f"{where} layers[{i}]") for i, x in enumerate(layers)),
            annotations,
            subject,
            _get(obj, "artifactType", str, where, required=False),
        )
    raise InvalidDocument(where, f"unsupported media type {kind!r}")


def parse_manifest(data: bytes, where: str, media_type: str | None = None) -> Manifest:
    doc = parse_document(data, where, media_type)
    if not isinstance(doc, Manifest):
        raise InvalidDocument(where, "expected an image manifest, found an index")
    return doc


@dataclass(frozen=True)
class ImageConfig:
    """An image configuration (image-spec config.md); `raw` keeps every field we do not model."""

    raw: dict[str, Any]

    @classmethod
    def parse(cls, data: bytes, where: str) -> ImageConfig:
        obj = load_json(data, where)
        rootfs = _get(obj, "rootfs", dict, where)
        if rootfs.get("type") != "layers":
            raise InvalidDocument(where, "rootfs.type must be 'layers'")
        diff_ids = _get(rootfs, "diff_ids", list, where)
        for i, d in enumerate(diff_ids):
            if not isinstance(d, str):
                raise InvalidDocument(where, f"rootfs.diff_ids[{i}] must be a string")
            digests.validate(d, f"{where} rootfs.diff_ids[{i}]")
        _get(obj, "architecture", str, where)
        _get(obj, "os", str, where)
        if obj.get("config") is not None and not isinstance(obj["config"], dict):
            raise InvalidDocument(where, "config must be an object")
        if obj.get("history") is not None and not isinstance(obj["history"], list):
            raise InvalidDocument(where, "history must be a list")
        return cls(obj)

    @property
    def diff_ids(self) -> list[str]:
        return list(self.raw["rootfs"]["diff_ids"])

    @property
    def config(self) -> dict[str, Any]:
        """The runtime defaults (`Env`, `Cmd`, `Entrypoint`, `User`, ...)."""
        return dict(self.raw.get("config") or {})

    @property
    def created(self) -> str:
        return str(self.raw.get("created") or "")

    @property
    def history(self) -> list[dict[str, Any]]:
        return [h for h in self.raw.get("history") or [] if isinstance(h, dict)]

    @property
    def platform(self) -> Platform:
        return Platform(self.raw["os"], self.raw["architecture"], self.raw.get("variant") or "")
