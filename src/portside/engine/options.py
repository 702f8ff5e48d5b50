"""Parsers of Docker's option syntaxes: sizes, CPUs, durations, env, -v, --mount, --restart.

Pure functions shared by the CLI (to fail early, before talking to the daemon) and the
daemon (which gets the same strings from any Docker client). Each raises InvalidArgument
with the offending text in its one-line message.
"""

from __future__ import annotations

import re
import signal as _signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from portside.errors import InvalidArgument
from portside.numbers import is_digits
from portside.times import parse_rfc3339

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_bytes(text: str, what: str = "size") -> int:
    """`64m`, `1g`, `512k`, `1024` -> bytes, binary units like Docker's RAMInBytes."""
    m = _SIZE.match(str(text))
    if not m:
        raise InvalidArgument(f"invalid {what} {text!r}: expected a number with an optional"
                              " unit b, k, m, g (e.g. 64m)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_memory_swap(text: str) -> int:
    """`--memory-swap`: a size, or -1 for unlimited swap."""
    return -1 if str(text).strip() == "-1" else parse_bytes(text, "memory-swap")


def parse_cpus(text: str) -> int:
    """`--cpus 0.5` -> NanoCpus (500000000)."""
    try:
        value = float(text)
    except ValueError:
        raise InvalidArgument(f"invalid --cpus {text!r}: expected a number like 0.5") from None
    if not (0 <= value < 1e6) or value != value:
        raise InvalidArgument(f"invalid --cpus {text!r}: out of range")
    return int(round(value * 1e9))


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9,
                   "m": 60 * 10**9, "h": 3600 * 10**9}


def parse_duration(text: str, what: str = "duration") -> int:
    """A Go duration (`2s`, `1m30s`, `500ms`; a bare `0`) -> nanoseconds."""
    s = str(text).strip()
    if s in ("0", ""):
        if s == "":
            raise InvalidArgument(f"invalid {what}: empty")
        return 0
    pos, total = 0, 0.0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if not m:
            raise InvalidArgument(f"invalid {what} {text!r}: expected e.g. 30s, 1m30s, 500ms")
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return int(total)


def parse_env(items: list[str], environ: Mapping[str, str] | None = None) -> list[str]:
    """`-e K=V` as is; `-e K` takes K from the caller's environment (dropped when unset)."""
    out = []
    for item in items:
        key, sep, _ = item.partition("=")
        if not key or key != key.strip() or " " in key:
            raise InvalidArgument(f"invalid environment variable {item!r}")
        if sep:
            out.append(item)
        elif environ is not None and key in environ:
            out.append(f"{key}={environ[key]}")
    return out


def parse_env_file(text: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """An --env-file: one K=V (or K) a line; blank lines and `#` comments skipped."""
    lines = [ln.strip() for ln in text.splitlines()]
    return parse_env([ln for ln in lines if ln and not ln.startswith("#")], environ)


def parse_labels(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid label {item!r}")
        out[key] = value
    return out


@dataclass(frozen=True)
class RestartPolicy:
    name: str = "no"
    maximum_retry_count: int = 0

    def to_api(self) -> dict[str, Any]:
        return {"Name": self.name if self.name != "no" else "no",
                "MaximumRetryCount": self.maximum_retry_count}


def parse_restart(text: str) -> RestartPolicy:
    """`no`, `always`, `unless-stopped`, `on-failure[:N]`."""
    name, sep, count = str(text).partition(":")
    if name in ("", "no", "always", "unless-stopped") and not sep:
        return RestartPolicy(name or "no")
    if name == "on-failure":
        if not sep:
            return RestartPolicy(name)
        if is_digits(count):
            return RestartPolicy(name, int(count))
    raise InvalidArgument(f"invalid restart policy {text!r}: expected no, always, unless-stopped"
                          " or on-failure[:max-retries]")


@dataclass
class MountSpec:
    """One mount in Docker's API shape (HostConfig.Mounts item), from -v, --mount or --tmpfs."""

    type: str  # bind | volume | tmpfs
    target: str
    source: str = ""  # host path (bind), volume name ("" = anonymous), unused for tmpfs
    read_only: bool = False
    create_source: bool = False  # `-v /host:/ctr` creates a missing host dir; --mount does not
    nocopy: bool = False
    propagation: str = ""
    tmpfs_size: int = 0
    tmpfs_mode: int = 0
    options: list[str] = field(default_factory=list)

    def to_api(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"Type": self.type, "Target": self.target}
        if self.source:
            doc["Source"] = self.source
        if self.read_only:
            doc["ReadOnly"] = True
        if self.type == "bind" and self.propagation:
            doc["BindOptions"] = {"Propagation": self.propagation}
        if self.type == "volume" and self.nocopy:
            doc["VolumeOptions"] = {"NoCopy": True}
        if self.type == "tmpfs" and (self.tmpfs_size or self.tmpfs_mode):
            doc["TmpfsOptions"] = {k: v for k, v in (("SizeBytes", self.tmpfs_size),
                                                     ("Mode", self.tmpfs_mode)) if v}
        return doc


_PROPAGATIONS = {"private", "rprivate", "shared", "rshared", "slave", "rslave"}
_VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def _check_target(target: str, spec: str) -> str:
    if not target.startswith("/"):
        raise InvalidArgument(f"invalid mount {spec!r}: the container path {target!r} must be"
                              " absolute")
    return target


def parse_volume(spec: str) -> MountSpec:
    """`-v` syntax: `/ctr` (anonymous), `name:/ctr[:opts]`, `/host:/ctr[:opts]`."""
    parts = spec.split(":")
    if len(parts) == 1:
        return MountSpec("volume", _check_target(parts[0], spec))
    if len(parts) > 3 or not parts[0] or not parts[1]:
        raise InvalidArgument(f"invalid volume specification {spec!r}")
    source, target = parts[0], _check_target(parts[1], spec)
    opts = parts[2].split(",") if len(parts) == 3 and parts[2] else []
    m = MountSpec("bind" if source.startswith("/") else "volume", target, source)
    for opt in opts:
        if opt in ("ro", "rw"):
            m.read_only = opt == "ro"
        elif opt in _PROPAGATIONS and m.type == "bind":
            m.propagation = opt
        elif opt == "nocopy" and m.type == "volume":
            m.nocopy = True
        elif opt in ("z", "Z"):
            continue  # SELinux relabelling: nothing to do without SELinux
        else:
            raise InvalidArgument(f"invalid volume specification {spec!r}: unknown option {opt!r}")
    if m.type == "bind":
        m.create_source = True
    elif not _VOLUME_NAME.match(source):
        raise InvalidArgument(f"invalid volume specification {spec!r}: {source!r} is not a valid"
                              " volume name (use an absolute path for a bind mount)")
    return m


def parse_mount(spec: str) -> MountSpec:
    """`--mount type=bind,source=/a,target=/b,readonly` (CSV of key=value)."""
    fields: dict[str, str] = {}
    flags: set[str] = set()
    for item in spec.split(","):
        key, sep, value = item.strip().partition("=")
        key = key.lower()
        if not key:
            continue
        if sep:
            fields[key] = value
        else:
            flags.add(key)
    kind = fields.pop("type", "volume")
    if kind not in ("bind", "volume", "tmpfs"):
        raise InvalidArgument(f"invalid --mount {spec!r}: type must be bind, volume or tmpfs")
    target = next((fields.pop(k) for k in ("target", "destination", "dst") if k in fields), "")
    source = next((fields.pop(k) for k in ("source", "src") if k in fields), "")
    if not target:
        raise InvalidArgument(f"invalid --mount {spec!r}: target is required")
    m = MountSpec(kind, _check_target(target, spec), source)
    ro = fields.pop("readonly", fields.pop("ro", None))
    if ro is not None:
        m.read_only = ro.lower() in ("1", "true", "yes")
    if flags & {"readonly", "ro"}:
        m.read_only = True
    if kind == "bind":
        if not source:
            raise InvalidArgument(f"invalid --mount {spec!r}: source is required for a bind mount")
        if not source.startswith("/"):
            raise InvalidArgument(f"invalid --mount {spec!r}: bind source must be absolute")
        prop = fields.pop("bind-propagation", "")
        if prop and prop not in _PROPAGATIONS:
            raise InvalidArgument(f"invalid --mount {spec!r}: bad bind-propagation {prop!r}")
        m.propagation = prop
    elif kind == "volume":
        if source and not _VOLUME_NAME.match(source):
            raise InvalidArgument(f"invalid --mount {spec!r}: bad volume name {source!r}")
        nocopy = fields.pop("volume-nocopy", None)
        m.nocopy = "volume-nocopy" in flags or (nocopy or "").lower() in ("1", "true")
    else:
        if source:
            raise InvalidArgument(f"invalid --mount {spec!r}: a tmpfs has no source")
        if "tmpfs-size" in fields:
            m.tmpfs_size = parse_bytes(fields.pop("tmpfs-size"), "tmpfs-size")
        if "tmpfs-mode" in fields:
            try:
                m.tmpfs_mode = int(fields.pop("tmpfs-mode"), 8)
            except ValueError:
                raise InvalidArgument(f"invalid --mount {spec!r}: bad tmpfs-mode") from None
    fields.pop("consistency", None)
    if fields:
        raise InvalidArgument(f"invalid --mount {spec!r}: unknown field {sorted(fields)[0]!r}")
    return m


def parse_tmpfs(spec: str) -> tuple[str, str]:
    """`--tmpfs /run:rw,size=64m` -> (target, options), Docker's HostConfig.Tmpfs entry."""
    target, _, opts = spec.partition(":")
    _check_target(target, spec)
    for opt in filter(None, opts.split(",")):
        key, sep, value = opt.partition("=")
        if key == "size" and sep:
            parse_bytes(value, "tmpfs size")
    return target, opts


def parse_signal(text: str | int) -> int:
    """`SIGHUP`, `HUP`, `hup` or `1` -> the signal number."""
    s = str(text).strip().upper()
    if is_digits(s):
        n = int(s)
        if 0 < n < 65:
            return n
    else:
        name = s if s.startswith("SIG") else "SIG" + s
        if name.startswith("SIGRTMIN+") and is_digits(name[9:]):
            return int(_signal.SIGRTMIN) + int(name[9:])
        sig = getattr(_signal.Signals, name, None)
        if sig is not None:
            return int(sig)
    raise InvalidArgument(f"invalid signal {text!r}")


def parse_log_opts(items: list[str]) -> dict[str, str]:
    """`--log-opt max-size=10m --log-opt max-file=3` (the only options of the local driver)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in ("max-size", "max-file"):
            raise InvalidArgument(f"invalid --log-opt {item!r}: supported are max-size=SIZE"
                                  " and max-file=N")
        if key == "max-size":
            parse_bytes(value, "max-size")
        elif not is_digits(value) or int(value) < 1:
            raise InvalidArgument(f"invalid --log-opt {item!r}: max-file must be a positive number")
        out[key] = value
    return out


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    """`--filter status=exited --filter label=a=b` -> Docker's filters JSON shape."""
    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"invalid filter {item!r}: expected key=value")
        out.setdefault(key, []).append(value)
    return out


def parse_time_or_duration(text: str, now: float) -> float:
    """`--since`/`--until`: a UNIX time, RFC 3339 time, or a duration back from now (`10m`)."""
    s = str(text).strip()
    try:
        return float(s)
    except ValueError:
        pass
    try:
        return now - parse_duration(s) / 1e9
    except InvalidArgument:
        pass
    try:
        return parse_rfc3339(s)
    except ValueError:
        raise InvalidArgument(f"invalid time {text!r}: expected a duration (10m), a UNIX"
                              " timestamp or an RFC 3339 time") from None
