"""The daemon's COPY cache through the docker client (classic protocol): a change to a
file's content, mode, type or presence invalidates the COPY steps that read it (and the
steps after them), never an earlier step, and never a step that does not read it. The
daemon keys COPY steps from digests taken while it unpacks the context, so these tests
change files in ways a stat-keyed shortcut would miss (same size, same mtime)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers.daemon import PortsideDaemon

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("docker") is None, reason="docker client not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the daemon needs root"),
]

DOCKERFILE = """\
FROM busybox
COPY a/ /a/
COPY b/ /b/
COPY one.txt /
"""
MTIME = 1_600_000_000


def _build(daemon: PortsideDaemon, ctx: Path) -> dict[str, bool]:
    """Build `ctx` as bp:1; which COPY steps (by their source) came from the cache."""
    r = subprocess.run(daemon.docker_argv("build", "-t", "bp:1", str(ctx)),
                       env=daemon.docker_env(DOCKER_BUILDKIT="0"), text=True,
                       capture_output=True, timeout=180, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}\n{daemon.log()[-2000:]}"
    steps = re.findall(r"^Step \d+/\d+ : COPY (\S+) .*\n(?: ---> (Using cache))?", r.stdout,
                       re.M)
    assert len(steps) == 3, r.stdout
    return {source: cached == "Using cache" for source, cached in steps}


def _write(path: Path, data: bytes) -> None:
    """Write `data` keeping the file's size and mtime (what a stat-keyed cache would trust)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (MTIME, MTIME))


def _cat(daemon: PortsideDaemon, *paths: str) -> str:
    return daemon.docker("run", "--rm", "bp:1", "cat", *paths).stdout


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    top = tmp_path / "ctx"
    _write(top / "a" / "x", b"ax")
    _write(top / "b" / "y", b"by")
    _write(top / "b" / "sub" / "z", b"bz")
    _write(top / "one.txt", b"one")
    _write(top / "other.txt", b"not copied")
    (top / "Dockerfile").write_text(DOCKERFILE)
    return top


ALL = {"a/": True, "b/": True, "one.txt": True}


def test_a_changed_file_rebuilds_the_steps_that_read_it(daemon: PortsideDaemon,
                                                         ctx: Path) -> None:
    assert _build(daemon, ctx) == {"a/": False, "b/": False, "one.txt": False}
    assert _build(daemon, ctx) == ALL

    _write(ctx / "b" / "y", b"BY")  # same size, same mtime
    assert _build(daemon, ctx) == {"a/": True, "b/": False, "one.txt": False}
    assert _cat(daemon, "/a/x", "/b/y", "/b/sub/z", "/one.txt") == "axBYbzone"

    _write(ctx / "other.txt", b"changed!!!")  # no step reads it
    assert _build(daemon, ctx) == ALL

    _write(ctx / "one.txt", b"ONE")  # the last step alone
    assert _build(daemon, ctx) == {"a/": True, "b/": True, "one.txt": False}
    assert _cat(daemon, "/one.txt") == "ONE"

    _write(ctx / "a" / "x", b"AX")  # the first step, and so the steps after it
    assert _build(daemon, ctx) == {"a/": False, "b/": False, "one.txt": False}
    assert _cat(daemon, "/a/x", "/b/y") == "AXBY"
    assert _build(daemon, ctx) == ALL


def test_mode_type_and_presence_changes_rebuild(daemon: PortsideDaemon, ctx: Path) -> None:
    _build(daemon, ctx)
    (ctx / "b" / "y").chmod(0o600)
    os.utime(ctx / "b" / "y", (MTIME, MTIME))
    assert _build(daemon, ctx) == {"a/": True, "b/": False, "one.txt": False}
    mode = daemon.docker("run", "--rm", "bp:1", "stat", "-c", "%a", "/b/y").stdout.strip()
    assert mode == "600"

    (ctx / "b" / "sub" / "z").unlink()
    (ctx / "b" / "sub" / "z").symlink_to("../y")  # a file becomes a symlink
    assert _build(daemon, ctx)["b/"] is False
    link = daemon.docker("run", "--rm", "bp:1", "readlink", "/b/sub/z").stdout.strip()
    assert link == "../y"
    (ctx / "b" / "sub" / "z").unlink()
    (ctx / "b" / "sub" / "z").symlink_to("y")  # the link's target changes
    assert _build(daemon, ctx)["b/"] is False

    _write(ctx / "b" / "new", b"")  # a new, empty file
    assert _build(daemon, ctx) == {"a/": True, "b/": False, "one.txt": False}
    (ctx / "b" / "new").unlink()  # and gone again: the very layer the cache had
    assert _build(daemon, ctx) == ALL
    r = daemon.docker("run", "--rm", "bp:1", "ls", "/b", check=False)
    assert "new" not in r.stdout

    (ctx / "a" / "x").rename(ctx / "a" / "w")  # same content under another name
    assert _build(daemon, ctx)["a/"] is False
    assert _cat(daemon, "/a/w") == "ax"
