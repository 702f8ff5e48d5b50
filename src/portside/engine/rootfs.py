"""A container's root filesystem as the container sees it, for `cp` and `export`.

`open_root` gives a directory descriptor of the container's `/`:
- running: `/proc/<pid>/root`, the root of its own mount namespace, so its volumes, bind
  mounts and tmpfs are where the container has them and writes land in its rw layer;
- stopped (created, exited): a short-lived helper process (`rootfs_helper`) mounts the
  overlay of the image layers and the rw layer, plus the container's volumes and binds,
  in a private mount namespace of its own; the descriptor reaches that tree through
  `/proc/<helper>/root`, and the mounts vanish with the helper (nothing to clean up after
  a crash, nothing visible on the host). Image layers are overlay lower dirs: never
  written.

`resolve` walks a path inside that root the way the container's kernel would, but with
the container's root as `/`: one component at a time, each opened with O_NOFOLLOW
relative to its parent's descriptor, symlinks read and resolved by hand (absolute ones
from the container's root), `..` clamped at the root. No path string is ever handed to
the host kernel to resolve, so neither `../../etc/passwd` nor a symlink to `/` or to a
host path can reach a host file.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from portside.engine.state import Container
from portside.errors import InvalidArgument, NotFound, PortsideError

if TYPE_CHECKING:
    from portside.engine.containers import Engine

O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_LINKS = 40  # the kernel's limit of symlinks followed in one lookup
ENGINE_FILES = ("hostname", "hosts", "resolv.conf")


class PathNotFound(NotFound):
    """Docker's wording, which its client shows as is."""

    def __init__(self, path: str, container: str) -> None:
        super().__init__(f"Could not find the file {path} in container {container}")


class NotADirectory(InvalidArgument):
    def __init__(self, path: str) -> None:
        super().__init__(f"{path}: not a directory")


class RootUnavailable(PortsideError):
    """The stopped container's filesystem could not be mounted."""


@dataclass
class Resolved:
    """Where a path ends up: the directory that holds it (a descriptor the caller closes
    with `close`), its name there ("" when the path is the root itself), and its absolute
    path inside the container after every symlink was followed."""

    parent: int
    name: str
    path: str
    exists: bool

    def lstat(self) -> os.stat_result:
        if not self.name:
            return os.fstat(self.parent)
        return os.stat(self.name, dir_fd=self.parent, follow_symlinks=False)

    def open_dir(self) -> int:
        """A readable descriptor of the path as a directory (never through a symlink)."""
        if not self.name:
            return os.open(".", O_DIR, dir_fd=self.parent)
        return os.open(self.name, O_DIR, dir_fd=self.parent)

    def close(self, root: int) -> None:
        if self.parent != root:
            os.close(self.parent)


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def resolve(root: int, path: str, container: str, follow_last: bool = False) -> Resolved:
    """Resolve `path` inside the container whose `/` is the descriptor `root`.

    Every directory on the way must exist (else PathNotFound); the last component may be
    missing (`exists` is False). With `follow_last`, a symlink in the last component is
    followed too.
    """
    todo = _parts(path)
    stack: list[tuple[str, int]] = []  # the directories walked into, with descriptors
    links = 0

    def cur() -> int:
        return stack[-1][1] if stack else root

    def pop() -> None:
        if stack:
            os.close(stack.pop()[1])

    try:
        while todo:
            part = todo.pop(0)
            if part == "..":
                pop()
                continue
            last = not todo
            try:
                st = os.stat(part, dir_fd=cur(), follow_symlinks=False)
            except FileNotFoundError:
                if last:
                    return _result(root, stack, part, False)
                raise PathNotFound(path, container) from None
            if stat.S_ISLNK(st.st_mode) and (follow_last or not last):
                links += 1
                if links > MAX_LINKS:
                    raise InvalidArgument(f"{path}: too many levels of symbolic links")
                target = os.readlink(part, dir_fd=cur())
                if target.startswith("/"):
                    while stack:
                        pop()
                todo = _parts(target) + todo
                continue
            if last:
                return _result(root, stack, part, True)
            if not stat.S_ISDIR(st.st_mode):
                raise NotADirectory(path)
            try:
                fd = os.open(part, O_DIR, dir_fd=cur())
            except OSError as exc:  # swapped for a symlink meanwhile: ELOOP, never followed
                raise PathNotFound(path, container) from exc
            stack.append((part, fd))
        # The path names a directory (the root, or one reached by `..` or a link).
        if not stack:
            return Resolved(root, "", "/", True)
        name, fd = stack.pop()
        parent = stack[-1][1] if stack else root
        result = Resolved(os.dup(parent) if stack else root, name,
                          "/" + "/".join([n for n, _ in stack] + [name]), True)
        os.close(fd)
        return result
    finally:
        while stack:
            pop()


def _result(root: int, stack: list[tuple[str, int]], name: str, exists: bool) -> Resolved:
    path = "/" + "/".join([n for n, _ in stack] + [name])
    return Resolved(os.dup(stack[-1][1]) if stack else root, name, path, exists)


# -- the root's descriptor ------------------------------------------------------------------


@contextlib.contextmanager
def open_root(engine: Engine, c: Container, volumes: bool = True) -> Iterator[int]:
    """A descriptor of the container's `/` (see the module docstring); with `volumes`
    False, only the image layers and the rw layer (what `export` shows).

    The caller holds the container's lock when it is not running, so that no start mounts
    its rw layer meanwhile."""
    if c.running and volumes:
        try:
            fd = os.open(f"/proc/{int(c.state['Pid'])}/root", O_DIR & ~os.O_NOFOLLOW)
        except OSError as exc:
            raise RootUnavailable(f"container {c.name} has no process to look into: {exc}"
                                  ) from None
        try:
            yield fd
        finally:
            os.close(fd)
        return
    with _helper(engine, c, volumes) as fd:
        yield fd


def _binds(engine: Engine, c: Container) -> list[dict[str, object]]:
    """Volumes and bind mounts (and the engine's /etc files) of a stopped container."""
    out: list[dict[str, object]] = []
    taken = set()
    for m in c.mounts:
        if m["Type"] in ("bind", "volume") and m.get("Source"):
            out.append({"source": m["Source"], "target": m["Destination"],
                        "read_only": not m.get("RW", True)})
            taken.add(m["Destination"])
    d = engine.container_dir(c.id)
    for name in ENGINE_FILES:
        if (d / name).is_file() and f"/etc/{name}" not in taken:
            out.append({"source": str(d / name), "target": f"/etc/{name}", "read_only": False})
    return out


@contextlib.contextmanager
def _helper(engine: Engine, c: Container, volumes: bool) -> Iterator[int]:
    from portside.runtime import mounts

    d = engine.container_dir(c.id)
    target = d / "cp-root"
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    rw = engine.rw_dir(c.id)
    (rw / "diff").mkdir(parents=True, exist_ok=True, mode=0o755)
    (rw / "work").mkdir(parents=True, exist_ok=True, mode=0o700)
    runtime_root = engine.runtime.root / c.id / "rootfs"
    # An exited container's overlay may still be mounted by the runtime (until its next
    # start or its removal): reuse it, for one upper dir must not be in two overlays.
    reuse = runtime_root.is_dir() and mounts.is_mounted(runtime_root)
    farm = d / f"cp-l-{secrets.token_hex(4)}"  # short names of long layer lists, per mount
    spec = {"target": str(target), "farm": str(farm),
            "bind_root": str(runtime_root) if reuse else "",
            "lowers": [] if reuse else [str(p) for p in engine.lowerdirs(c.image_id)],
            "upper": str(rw / "diff"), "work": str(rw / "work"),
            "binds": _binds(engine, c) if volumes else []}
    proc = subprocess.Popen([sys.executable, "-m", "portside.engine.rootfs_helper"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, close_fds=True)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    fd = -1
    try:
        proc.stdin.write(json.dumps(spec).encode() + b"\n")
        proc.stdin.flush()
        if proc.stdout.readline() != b"ready\n":
            proc.stdin.close()
            err = proc.stderr.read().decode(errors="replace").strip().splitlines()
            raise RootUnavailable(f"cannot mount the filesystem of container {c.name}: "
                                  + (err[-1] if err else "the helper failed"))
        fd = os.open(f"/proc/{proc.pid}/root{target}", O_DIR & ~os.O_NOFOLLOW)
        yield fd
    finally:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            proc.stdin.close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        shutil.rmtree(farm, ignore_errors=True)
