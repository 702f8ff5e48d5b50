"""The container's root filesystem: an overlayfs of the image's layer snapshots plus a
per-container upper dir, mounted with mount(2) directly (no `mount` subprocess).

Long layer lists: mount(2) takes at most one page of options. When `lowerdir=a:b:...`
would not fit, the lower dirs are reached through a farm of one-character symlinks in
the container dir and the mount runs in a forked child whose cwd is that farm, so the
option string holds only short relative names.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
from pathlib import Path

from portside.runtime.errors import MountFailed

MS_RDONLY = 1
MS_BIND = 4096
MNT_DETACH = 2
_PAGE = os.sysconf("SC_PAGE_SIZE")

_libc: ctypes.CDLL | None = None


def libc() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _libc


def mount(source: str, target: str, fstype: str, flags: int = 0, data: str = "") -> None:
    rc = libc().mount(source.encode(), target.encode(), fstype.encode(), flags,
                      data.encode() if data else None)
    if rc != 0:
        err = ctypes.get_errno()
        raise MountFailed(target, f"{fstype}: {os.strerror(err)}")


def umount(target: str, detach: bool = False) -> None:
    rc = libc().umount2(target.encode(), MNT_DETACH if detach else 0)
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)


def is_mounted(target: Path) -> bool:
    """Whether `target` is a mount point (by mountinfo, robust for overlay on same fs)."""
    t = os.path.realpath(target)
    with open("/proc/self/mountinfo") as f:
        return any(_unescape(line.split()[4]) == t for line in f)


def mounts_under(prefix: Path) -> list[str]:
    """Mount points at or below `prefix`, deepest first (the order to unmount them)."""
    p = os.path.realpath(prefix)
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = _unescape(line.split()[4])
            if mp == p or mp.startswith(p + "/"):
                out.append(mp)
    return sorted(out, key=len, reverse=True)


def _unescape(s: str) -> str:
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace(
        "\\134", "\\")


def mount_rootfs(
    target: Path, lowerdirs: list[Path], upper: Path, work: Path, farm: Path,
) -> None:
    """Mount the overlay at `target`: `lowerdirs` top-most first, writes go to `upper`."""
    if len(lowerdirs) == 0:
        raise MountFailed(str(target), "no lower directories")
    lowers = [str(p) for p in lowerdirs]
    # `volatile`: no sync of the upper fs at unmount (which costs from milliseconds to
    # seconds per container). Writes of a container survive its restarts but not a host
    # crash, as with podman's volatile containers. After a crash the kernel leaves
    # work/work/incompat/volatile and refuses the dir until that is removed.
    shutil.rmtree(work / "work" / "incompat", ignore_errors=True)
    opts = f"upperdir={upper},workdir={work},volatile"
    data = f"lowerdir={':'.join(lowers)},{opts}"
    if len(data) < _PAGE - 1:
        mount("overlay", str(target), "overlay", 0, data)
        return
    farm.mkdir(exist_ok=True)
    names = []
    for i, low in enumerate(lowers):
        name = format(i, "x")
        os.symlink(low, farm / name)
        names.append(name)
    data = f"lowerdir={':'.join(names)},{opts}"
    if len(data) >= _PAGE - 1:
        raise MountFailed(str(target), f"too many layers ({len(lowers)})")
    # chdir is process-wide: do it in a forked child so the caller's threads are unaffected.
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.chdir(farm)
            rc = libc().mount(b"overlay", str(target).encode(), b"overlay", 0, data.encode())
            os._exit(0 if rc == 0 else min(ctypes.get_errno(), 255))
        except BaseException:
            os._exit(255)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise MountFailed(str(target), f"overlay: {os.strerror(code)}")


def unmount_all(prefix: Path) -> list[str]:
    """Unmount everything at or below `prefix`; returns the mount points that stayed."""
    left = []
    for mp in mounts_under(prefix):
        try:
            umount(mp)
        except OSError:
            try:
                umount(mp, detach=True)
            except OSError:
                left.append(mp)
    return left


def clear_dir(path: Path) -> None:
    """Remove a directory tree that may contain overlay work dirs (d--------- entries)."""
    def onerror(func: object, p: str, exc: object) -> None:
        with contextlib.suppress(OSError):
            os.chmod(p, 0o700)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)

    shutil.rmtree(path, onerror=onerror)
