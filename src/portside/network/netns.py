"""Named network namespaces: a new net namespace kept alive by a bind mount on a file.

This is what `ip netns add` does, under `/run/portside/netns/<name>`: the engine passes the
path to the runtime (ContainerSpec.network_namespace) and to `NetworkManager.attach`. The
directory is made a shared mount, so the removal of a namespace propagates into mount
namespaces created after it (as iproute2 does for /run/netns).

The namespace is made in a short-lived thread of our own process, not by `unshare` and
`ip` (two programs, ~5 ms on every bridged start): namespaces belong to a task, so
unshare(CLONE_NEWNET) moves only that thread into the new namespace; it pins the
namespace with a bind mount of its own /proc/thread-self/ns/net, brings `lo` up through
an ioctl on a socket opened there, and ends. The rest of the process never changes
namespace.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
import subprocess
import threading
from pathlib import Path

from portside.errors import PortsideError

NETNS_DIR = Path("/run/portside/netns")
_MNT_DETACH = 2
_MS_BIND = 4096
_CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
_libc: ctypes.CDLL | None = None


def _c() -> ctypes.CDLL:
    """The C library already loaded in this process (no `ldconfig -p` to find it)."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


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
    failure: list[str] = []
    worker = threading.Thread(target=_pin_new_netns, args=(path, failure), daemon=True)
    worker.start()
    worker.join()
    if failure:
        _unmount(path)
        path.unlink(missing_ok=True)
        raise NetnsError(path, failure[0])
    return path


def _pin_new_netns(path: Path, failure: list[str]) -> None:
    """In a thread that ends right after: a new network namespace, bound onto `path`,
    with `lo` up (containers get a working loopback, as Docker's do)."""
    libc = _c()
    try:
        if libc.unshare(_CLONE_NEWNET) != 0:
            raise _errno("unshare")
        own = f"/proc/self/task/{threading.get_native_id()}/ns/net".encode()
        if libc.mount(own, os.fsencode(path), None, _MS_BIND, None) != 0:
            raise _errno("bind mount")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # in the new namespace
            request = struct.pack("16sH22x", b"lo", 0)
            flags = struct.unpack("16sH22x", fcntl.ioctl(s, _SIOCGIFFLAGS, request))[1]
            fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | _IFF_UP))
    except OSError as exc:
        failure.append(exc.strerror or str(exc))


def _errno(step: str) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, f"{step}: {os.strerror(err)}")


def delete_netns(path: str | Path) -> None:
    """Unpin and remove a namespace file; the kernel frees the namespace (and its veths)
    once no process is left in it. Deleting a missing one is not an error."""
    p = Path(path)
    if _mounted(p):
        _unmount(p)
    p.unlink(missing_ok=True)


def _unmount(path: Path) -> None:
    if _c().umount2(os.fsencode(path), _MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (22, 2):  # EINVAL: not a mount point; ENOENT: gone
            raise NetnsError(path, os.strerror(err))


def list_netns(directory: Path = NETNS_DIR) -> list[str]:
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if _mounted(p))
