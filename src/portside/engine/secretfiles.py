"""Secrets given to a container: references in its HostConfig, files on a tmpfs at start.

A container's `HostConfig.PortsideSecrets` is a list of Docker's `SecretReference`s
(`SecretID`, `SecretName`, `File: {Name, UID, GID, Mode}`), checked at create against the
engine's `SecretSource` (the daemon's assembly passes the trust layer's store; the engine
never imports it). Only references are recorded, never a value.

At each start the values are read (so a Vault secret is read then) and written to a fresh
tmpfs mounted under `<root>/secretfs` (a private mount, so the tmpfs never propagates to
another mount namespace: a systemd host's / is shared), made read-only, and bind mounted
read-only at `/run/secrets`. Once the runtime has created the container (its mount
namespace holds its own reference to the tmpfs) the host's mount is detached: nothing of
the secret stays on the host, and the tmpfs goes with the container's namespace. The files
live on no layer, so `diff`, `commit` and `export` never see them.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Any, Protocol

from portside.errors import InvalidArgument, PortsideError

SECRETS_KEY = "PortsideSecrets"
SECRETS_DIR = "/run/secrets"
_TMPFS_SIZE = 8 * 1024 * 1024  # room for 16 secrets of Docker's 500 KB
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_PRIVATE, _MNT_DETACH = 32, 4096, 1 << 18, 2
BASE = "secretfs"
_base_lock = threading.Lock()
_FLAGS = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC


class SecretSource(Protocol):
    """The secrets a container may be given: `lookup` finds one by ID, name or ID prefix
    and gives (ID, name); `value` gives its bytes at container start. Errors are one line
    (unknown secret, unreachable or sealed backend) and never contain a value."""

    def lookup(self, ref: str) -> tuple[str, str]: ...

    def value(self, ref: str) -> bytes: ...


class NoSecrets:
    """The engine without a secret store (an engine built outside the daemon)."""

    def lookup(self, ref: str) -> tuple[str, str]:
        raise InvalidArgument(f"secret {ref!r}: this engine has no secret store")

    def value(self, ref: str) -> bytes:
        return self.lookup(ref)[0].encode()  # never reached: lookup refuses first


def _int(value: object, what: str, default: int) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidArgument(f"invalid secret {what} {value!r}: expected a number")
    try:
        return int(value)
    except ValueError:
        raise InvalidArgument(f"invalid secret {what} {value!r}: expected a number") from None


def normalise(refs: object, source: SecretSource) -> list[dict[str, Any]]:
    """Docker's `SecretReference` list, checked and completed (ID and name both filled,
    the file name defaulting to the secret's name, uid/gid 0 and mode 0444 by default)."""
    if not isinstance(refs, list):
        raise InvalidArgument(f"invalid {SECRETS_KEY}: expected a list of secret references")
    out: list[dict[str, Any]] = []
    names: set[str] = set()
    for ref in refs:
        if not isinstance(ref, dict):
            raise InvalidArgument(f"invalid {SECRETS_KEY}: expected a list of secret references")
        sid, name = source.lookup(str(ref.get("SecretID") or ref.get("SecretName") or ""))
        file = ref.get("File") or {}
        if not isinstance(file, dict):
            raise InvalidArgument(f"secret {name!r}: File must be an object")
        target = str(file.get("Name") or name)
        if target.startswith(SECRETS_DIR + "/"):
            target = target[len(SECRETS_DIR) + 1:]
        if not target or "/" in target or target in (".", ".."):
            raise InvalidArgument(f"secret {name!r}: target {target!r} must be a file name "
                                  f"in {SECRETS_DIR}")
        if target in names:
            raise InvalidArgument(f"secret {name!r}: target {SECRETS_DIR}/{target} is used "
                                  "twice")
        names.add(target)
        mode = file.get("Mode")
        mode = int(mode, 8) if isinstance(mode, str) and mode.isdigit() else _int(
            mode, "mode", 0o444)
        if not 0 <= mode <= 0o777:
            raise InvalidArgument(f"secret {name!r}: invalid mode {mode:o}")
        out.append({"SecretID": sid, "SecretName": name,
                    "File": {"Name": target, "UID": str(_int(file.get("UID"), "uid", 0)),
                             "GID": str(_int(file.get("GID"), "gid", 0)), "Mode": mode}})
    return out


def parse_secret(text: str) -> dict[str, Any]:
    """`--secret NAME[,target=PATH,uid=N,gid=N,mode=0400]` (or `source=NAME,...`, as
    `docker service create --secret`) -> a `SecretReference`."""
    name = ""
    file: dict[str, Any] = {}
    for i, part in enumerate(p for p in text.split(",") if p):
        key, sep, value = part.partition("=")
        if not sep and i == 0:
            name = key
        elif key in ("source", "src") and sep:
            name = value
        elif key in ("target", "dst", "destination") and sep:
            file["Name"] = value
        elif key in ("uid", "gid") and sep:
            file[key.upper()] = str(_int(value, key, 0))
        elif key == "mode" and sep:
            try:
                file["Mode"] = int(value, 8)
            except ValueError:
                raise InvalidArgument(f"invalid --secret {text!r}: mode {value!r} is not "
                                      "octal") from None
        else:
            raise InvalidArgument(f"invalid --secret {text!r}: unknown field {part!r} "
                                  "(NAME[,target=PATH,uid=N,gid=N,mode=0444])")
    if not name:
        raise InvalidArgument(f"invalid --secret {text!r}: no secret name")
    return {"SecretName": name, "File": file}


def with_secrets(host_config: dict[str, Any], refs: list[dict[str, Any]]) -> dict[str, Any]:
    """The HostConfig that gives a container Docker's `SecretReference`s (a service's
    `TaskTemplate.ContainerSpec.Secrets`): the engine checks them at create."""
    return {**host_config, SECRETS_KEY: list(refs)} if refs else dict(host_config)


def _libc() -> Any:
    import ctypes  # only when a container has secrets

    return ctypes.CDLL(None, use_errno=True)


def _mount(libc: Any, source: bytes | None, target: Path, fstype: bytes | None, flags: int,
           data: bytes | None) -> None:
    import ctypes

    if libc.mount(source, str(target).encode(), fstype, flags, data) != 0:
        err = ctypes.get_errno()
        raise PortsideError(f"mount of the secrets tmpfs at {target}: {os.strerror(err)}")


def mount_points(mounts: list[dict[str, Any]]) -> dict[str, bool]:
    """The container's other mounts right inside /run/secrets (compose's `file:` secrets),
    name -> is a directory: their mount points must exist on the read-only tmpfs."""
    out = {}
    for m in mounts:
        parent, _, name = str(m.get("Destination") or "").rpartition("/")
        if parent == SECRETS_DIR and name:
            out[name] = os.path.isdir(m.get("Source") or "")
    return out


def _is_mount_point(path: Path) -> bool:
    """From mountinfo: a bind of a directory onto itself has its parent's st_dev, so
    `os.path.ismount` does not see it."""
    target = str(path).replace("\\", "\\134").replace(" ", "\\040")
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return any(line.split()[4] == target for line in f)


def private_base(root: Path) -> Path:
    """`<root>/secretfs`, bound onto itself and made private once: mounts under it do not
    propagate anywhere, so no copy of a secrets tmpfs outlives its container elsewhere."""
    base = root / BASE
    with _base_lock:
        base.mkdir(mode=0o700, exist_ok=True)
        if not _is_mount_point(base):
            libc = _libc()
            _mount(libc, str(base).encode(), base, None, _MS_BIND, None)
            _mount(libc, None, base, None, _MS_PRIVATE, None)
    return base


def close_base(root: Path) -> None:
    """Detach `<root>/secretfs` (the daemon's stop; running containers keep their own)."""
    base = root / BASE
    with _base_lock:
        if base.exists() and _is_mount_point(base):
            _libc().umount2(str(base).encode(), _MNT_DETACH)


def populate(root: Path, cid: str, refs: list[dict[str, Any]], source: SecretSource,
             points: dict[str, bool] | None = None) -> Path:
    """Read every value and write the files on a new read-only tmpfs under the root's
    private base (with empty mount points for `points`); the caller binds it into the
    container, then `release`s it."""
    values = [(ref, source.value(ref["SecretID"])) for ref in refs]  # before any mount
    where = private_base(root) / cid
    release(where)
    where.mkdir(mode=0o700, exist_ok=True)
    libc = _libc()
    _mount(libc, b"tmpfs", where, b"tmpfs", _FLAGS, f"mode=0755,size={_TMPFS_SIZE}".encode())
    try:
        for ref, data in values:
            f = ref["File"]
            fd = os.open(where / f["Name"], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                         0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fchown(fd, int(f["UID"]), int(f["GID"]))
                os.fchmod(fd, int(f["Mode"]))
            finally:
                os.close(fd)
        for name, is_dir in (points or {}).items():
            if not (where / name).exists():
                (where / name).mkdir() if is_dir else (where / name).touch(0o444)
        _mount(libc, None, where, None, _MS_REMOUNT | _MS_RDONLY | _FLAGS, None)
    except BaseException:
        release(where)
        raise
    return where


def mount(where: Path) -> Any:
    """The runtime's read-only bind of the populated tmpfs at /run/secrets."""
    from portside.runtime import Mount

    return Mount(SECRETS_DIR, "bind", str(where), ["rbind", "ro", "nosuid", "nodev", "noexec"])


def release(where: Path) -> None:
    """Detach the host's view of a secrets tmpfs (the container keeps its own), and remove
    the empty mount point. Nothing to do when there is none."""
    if not where.exists():
        return
    if os.path.ismount(where):
        _libc().umount2(str(where).encode(), _MNT_DETACH)
    shutil.rmtree(where, ignore_errors=True)
