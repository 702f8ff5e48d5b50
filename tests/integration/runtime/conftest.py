"""Fixtures for the runtime's integration tests: a busybox root made of two layers, and a
Runtime per test (crun and runc) that must leave no container, mount or cgroup behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from portside.runtime import ContainerSpec, Runtime, read_logs
from portside.runtime import cgroups as cg

BUSYBOX = shutil.which("busybox") or "/bin/busybox"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def _tools_missing() -> list[str]:
    return [t for t in ("conmon", "crun", "runc") if shutil.which(t) is None]


@pytest.fixture(scope="session")
def busybox_layers(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """[etc layer, busybox layer]: top-most first, as an image's snapshots would be."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if _tools_missing():
        pytest.skip(f"missing {', '.join(_tools_missing())}")
    base = tmp_path_factory.mktemp("busybox")
    low = base / "bin-layer"
    (low / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, low / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", low / "bin" / applet)
    top = base / "etc-layer"
    for d in ("etc", "tmp", "proc", "sys", "dev", "mnt", "root", "home/app", "data", "usr/bin"):
        (top / d).mkdir(parents=True)
    (top / "tmp").chmod(0o1777)
    (top / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\n"
        "app:x:1000:1000:app:/home/app:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    )
    (top / "etc" / "group").write_text(
        "root:x:0:\napp:x:1000:\nstaff:x:50:app\naudio:x:29:app,root\nnogroup:x:65534:\n"
    )
    (top / "usr" / "bin" / "notexec").write_text("#!/bin/sh\necho no\n")
    return [top, low]


@dataclass
class Harness:
    """A Runtime plus helpers to run a busybox container to completion."""

    rt: Runtime
    runtime: str
    layers: list[Path]

    def spec(self, *args: str, **kw: object) -> ContainerSpec:
        cid = kw.pop("id", None) or uuid.uuid4().hex
        return ContainerSpec(id=str(cid), lowerdirs=list(self.layers), args=list(args),
                             runtime=self.runtime, **kw)  # type: ignore[arg-type]

    def run(self, *args: str, **kw: object) -> tuple[int, str, str]:
        """Create, start, wait: (exit code, stdout, stderr); the container is deleted."""
        spec = self.spec(*args, **kw)
        self.rt.create(spec)
        try:
            self.rt.start(spec.id)
            code = self.rt.wait(spec.id, timeout=60)
            out, err = self.output(spec.id)
            return code, out, err
        finally:
            self.rt.delete(spec.id, force=True)

    def output(self, cid: str) -> tuple[str, str]:
        out, err = [], []
        for e in read_logs(self.rt.log_path(cid)):
            (out if e.stream == "stdout" else err).append(e.data.decode(errors="replace"))
        return "".join(out), "".join(err)


def leftover_mounts(prefix: Path) -> list[str]:
    p = os.path.realpath(prefix)
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(p)]


def leftover_cgroups(parent: str) -> list[str]:
    out = []
    for h in cg.detect().hierarchies():
        d = Path(h) / parent
        if d.is_dir():
            out += [str(c) for c in d.iterdir() if c.is_dir()]
    return out


def remove_cgroup_parent(parent: str) -> None:
    for h in cg.detect().hierarchies():
        d = Path(h) / parent
        if d.is_dir():
            os.rmdir(d)


@pytest.fixture(params=["crun", "runc"])
def harness(request: pytest.FixtureRequest, root: Path,
            busybox_layers: list[Path]) -> Iterator[Harness]:
    parent = f"portside-test-{uuid.uuid4().hex[:8]}"
    rt = Runtime(root / "containers", cgroup_parent=parent)
    h = Harness(rt, request.param, busybox_layers)
    try:
        yield h
    finally:
        for cid in h.rt.list():
            h.rt.delete(cid, force=True)
        h.rt.close()
        mounts, cgs = leftover_mounts(root), leftover_cgroups(parent)
        for d in cgs:  # never leave the host worse off, even when the test failed
            os.rmdir(d)
        remove_cgroup_parent(parent)
    assert mounts == []
    assert cgs == []
