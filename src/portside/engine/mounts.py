"""Resolve a container's mounts: HostConfig Binds/Mounts/Tmpfs plus the image's VOLUMEs.

Gives both shapes: Docker's `Mounts` entries for inspect (stored with the container) and
the runtime's `Mount`s. Named volumes are created on first use, anonymous ones get a
random name; an empty volume receives the image's content at its path (copy-up).
A `-v` bind with a missing host directory creates it (Docker's legacy rule); `--mount`
refuses with "bind source path does not exist", as Docker does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from portside.engine.options import MountSpec, parse_bytes, parse_volume
from portside.engine.volumes import VolumeStore, copy_up
from portside.errors import InvalidArgument


class BindSourceMissing(InvalidArgument):
    def __init__(self, path: str) -> None:
        super().__init__(f"invalid mount config for type \"bind\": bind source path does not"
                         f" exist: {path}")


def _from_api(m: dict[str, Any]) -> MountSpec:
    kind = m.get("Type") or "volume"
    if kind not in ("bind", "volume", "tmpfs"):
        raise InvalidArgument(f"mount type {kind!r} is not supported")
    target = m.get("Target") or ""
    if not target.startswith("/"):
        raise InvalidArgument(f"invalid mount config: target {target!r} must be an absolute path")
    spec = MountSpec(kind, target, m.get("Source") or "", bool(m.get("ReadOnly")))
    spec.propagation = (m.get("BindOptions") or {}).get("Propagation") or ""
    spec.nocopy = bool((m.get("VolumeOptions") or {}).get("NoCopy"))
    tmpfs = m.get("TmpfsOptions") or {}
    spec.tmpfs_size = int(tmpfs.get("SizeBytes") or 0)
    spec.tmpfs_mode = int(tmpfs.get("Mode") or 0)
    if kind == "bind" and not spec.source.startswith("/"):
        raise InvalidArgument(f"invalid mount config for type \"bind\": invalid source"
                              f" {spec.source!r}: must be an absolute path")
    return spec


def requested(host_config: dict[str, Any], image_volumes: dict[str, Any] | None) -> list[MountSpec]:
    """Every mount asked for, later ones replacing earlier ones at the same target."""
    by_target: dict[str, MountSpec] = {}
    for path in image_volumes or {}:
        by_target[path.rstrip("/") or "/"] = MountSpec("volume", path)
    for bind in host_config.get("Binds") or []:
        spec = parse_volume(bind)
        by_target[spec.target.rstrip("/") or "/"] = spec
    for m in host_config.get("Mounts") or []:
        spec = _from_api(m)
        by_target[spec.target.rstrip("/") or "/"] = spec
    for target, opts in (host_config.get("Tmpfs") or {}).items():
        spec = MountSpec("tmpfs", target, options=[o for o in opts.split(",") if o])
        by_target[target.rstrip("/") or "/"] = spec
    return list(by_target.values())


def check_sources(specs: list[MountSpec]) -> None:
    """Refuse `--mount type=bind` sources that do not exist, before anything is created."""
    for spec in specs:
        if spec.type == "bind" and not spec.create_source and not os.path.exists(spec.source):
            raise BindSourceMissing(spec.source)


def resolve(specs: list[MountSpec], volumes: VolumeStore, lowerdirs: list[Path]
            ) -> list[dict[str, Any]]:
    """Create what is missing and return Docker's `Mounts` entries (stored with the container)."""
    out = []
    for spec in specs:
        if spec.type == "bind":
            if not os.path.exists(spec.source):
                if not spec.create_source:
                    raise BindSourceMissing(spec.source)
                os.makedirs(spec.source, mode=0o755, exist_ok=True)
            out.append({"Type": "bind", "Source": spec.source, "Destination": spec.target,
                        "Mode": "ro" if spec.read_only else "", "RW": not spec.read_only,
                        "Propagation": spec.propagation or "rprivate"})
        elif spec.type == "volume":
            doc, _ = volumes.create(spec.source, anonymous=not spec.source)
            data = Path(doc["Mountpoint"])
            if not spec.nocopy and lowerdirs:
                copy_up(lowerdirs, spec.target, data)
            out.append({"Type": "volume", "Name": doc["Name"], "Source": str(data),
                        "Destination": spec.target, "Driver": "local",
                        "Mode": "ro" if spec.read_only else "z", "RW": not spec.read_only,
                        "Propagation": ""})
        else:
            options = list(spec.options)
            if spec.tmpfs_size:
                options.append(f"size={spec.tmpfs_size}")
            if spec.tmpfs_mode:
                options.append(f"mode={spec.tmpfs_mode:o}")
            if spec.read_only:
                options.append("ro")
            for opt in options:
                key, sep, value = opt.partition("=")
                if key == "size" and sep:
                    parse_bytes(value, "tmpfs size")
            out.append({"Type": "tmpfs", "Source": "", "Destination": spec.target,
                        "Mode": ",".join(options), "RW": "ro" not in options,
                        "Propagation": ""})
    return out


def runtime_mounts(mounts: list[dict[str, Any]]) -> list[Any]:
    """Docker `Mounts` entries -> the runtime's Mount objects."""
    from portside.runtime import Mount

    out = []
    for m in mounts:
        if m["Type"] == "tmpfs":
            opts = ["nosuid", "nodev", "noexec"] + [
                o for o in m["Mode"].split(",") if o and o not in ("rw",)]
            out.append(Mount(m["Destination"], "tmpfs", "tmpfs", opts))
        else:
            opts = ["rbind", "ro" if not m["RW"] else "rw"]
            if m.get("Propagation"):
                opts.append(m["Propagation"])
            out.append(Mount(m["Destination"], "bind", m["Source"], opts))
    return out
