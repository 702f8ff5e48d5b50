"""Mount a stopped container's filesystem in a private mount namespace, and hold it.

Run by `rootfs.open_root` as `python -m portside.engine.rootfs_helper`: reads one JSON line
(target, the overlay's lower/upper/work dirs or a mounted root to bind, the volumes and
binds), unshares its mount namespace (propagation private, so nothing reaches the host),
mounts, prints `ready`, and waits for its stdin to close. The daemon reaches the tree
through `/proc/<pid>/root/<target>`; when this process exits the kernel drops the
namespace and every mount in it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_REMOUNT = 32
MS_RDONLY = 1
CLONE_NEWNS = 0x20000


def _unshare_mounts() -> None:
    import ctypes

    from portside.runtime.mounts import libc

    if libc().unshare(CLONE_NEWNS) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare(CLONE_NEWNS): {os.strerror(err)}")


def _mount_binds(target: Path, binds: list[dict[str, object]]) -> None:
    from portside.runtime.mounts import mount
    from portside.runtime.rootpath import resolve_in_root

    for b in binds:
        source = str(b["source"])
        if not os.path.exists(source):
            continue
        # Resolved inside the container's root: a symlink there never places a mount on
        # a host path (and in this namespace nothing else could see it anyway).
        where = resolve_in_root(target, str(b["target"]))
        if os.path.isdir(source):
            where.mkdir(parents=True, exist_ok=True)
        else:
            where.parent.mkdir(parents=True, exist_ok=True)
            if not where.exists():
                where.touch()
        mount(source, str(where), "", MS_BIND | MS_REC)
        if b.get("read_only"):
            mount("", str(where), "", MS_BIND | MS_REMOUNT | MS_RDONLY)


def main() -> int:
    from portside.runtime.mounts import mount, mount_rootfs

    spec = json.loads(sys.stdin.readline())
    target = Path(spec["target"])
    try:
        _unshare_mounts()
        mount("none", "/", "", MS_REC | MS_PRIVATE)
        if spec["bind_root"]:
            mount(spec["bind_root"], str(target), "", MS_BIND)
        else:
            mount_rootfs(target, [Path(p) for p in spec["lowers"]], Path(spec["upper"]),
                         Path(spec["work"]), Path(spec["farm"]))
        _mount_binds(target, spec["binds"])
    except Exception as exc:  # noqa: BLE001 - reported to the daemon as one line
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.read()  # until the daemon closes our stdin
    return 0


if __name__ == "__main__":
    sys.exit(main())
