"""Named network namespaces: a new net namespace kept alive by a bind mount on a file.

This is what `ip netns add` does, under `/run/portside/netns/<name>`: the engine passes the
path to the runtime (ContainerSpec.network_namespace) and to `NetworkManager.attach`. The
directory is made a shared mount, so the removal of a namespace propagates into mount
namespaces created after it (as iproute2 does for /run/netns).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import subprocess
from pathlib import Path

from portside.errors import PortsideError

NETNS_DIR = Path("/run/portside/netns")
_MNT_DETACH = 2


class NetnsError(PortsideError):
    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"network namespace {path}: {' '.join(message.split())}")


def _mounted(path: Path) -> bool:
    target = str(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == target for line in f)


def _ensure_dir(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if not _mounted(directory):
        subprocess.run(["mount", "--bind", str(directory), str(directory)], check=True,
                       capture_output=True)
        subprocess.run(["mount", "--make-shared", str(directory)], check=True,
                       capture_output=True)


def create_netns(name: str, directory: Path = NETNS_DIR) -> Path:
    """Create a fresh network namespace (only `lo`, up) pinned at `<directory>/<name>`."""
    if not name or "/" in name or name.startswith("."):
        raise NetnsError(directory / name, "invalid name")
    _ensure_dir(directory)
    path = directory / name
    if path.exists() and _mounted(path):
        raise NetnsError(path, "already exists")
    path.touch()
    # util-linux unshare binds the new namespace onto the file; `ip link set lo up` inside
    # gives containers a working loopback, as Docker's do.
    res = subprocess.run(["unshare", f"--net={path}", "ip", "link", "set", "lo", "up"],
                         capture_output=True, text=True)
    if res.returncode != 0:
        _unmount(path)
        path.unlink(missing_ok=True)
        raise NetnsError(path, res.stderr or "unshare failed")
    return path


def delete_netns(path: str | Path) -> None:
    """Unpin and remove a namespace file; the kernel frees the namespace (and its veths)
    once no process is left in it. Deleting a missing one is not an error."""
    p = Path(path)
    if _mounted(p):
        _unmount(p)
    p.unlink(missing_ok=True)


def _unmount(path: Path) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.umount2(os.fsencode(path), _MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (22, 2):  # EINVAL: not a mount point; ENOENT: gone
            raise NetnsError(path, os.strerror(err))


def list_netns(directory: Path = NETNS_DIR) -> list[str]:
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if _mounted(p))
