"""What a container cannot do, checked through `portside run`, and clean-up after rm."""

from __future__ import annotations

import os
from pathlib import Path

from helpers.daemon import PortsideDaemon


def test_container_is_isolated(daemon: PortsideDaemon) -> None:
    r = daemon.cli("run", "--rm", "busybox", "sh", "-c", "ps -o pid | wc -l", check=False)
    assert int(r.stdout.strip()) <= 4  # header, sh, ps, wc: no host processes
    r = daemon.cli("run", "--rm", "busybox", "mount", "-t", "tmpfs", "t", "/mnt", check=False)
    assert r.returncode != 0
    r = daemon.cli("run", "--rm", "busybox", "sh", "-c", "echo h > /proc/sysrq-trigger",
                   check=False)
    assert r.returncode != 0
    r = daemon.cli("run", "--rm", "busybox", "insmod", "/nonexistent.ko", check=False)
    assert r.returncode != 0
    r = daemon.cli("run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net")
    assert r.stdout.split() == ["lo"]


def test_cap_drop_and_privileged(daemon: PortsideDaemon) -> None:
    r = daemon.cli("run", "--rm", "--cap-drop", "CHOWN", "busybox", "chown", "1", "/tmp",
                   check=False)
    assert r.returncode != 0
    assert daemon.cli("run", "--rm", "busybox", "chown", "1", "/tmp").returncode == 0


def _ours(root: Path) -> tuple[list[str], list[str]]:
    """Mounts and conmon processes that mention this test's root."""
    mounts = [ln for ln in Path("/proc/self/mountinfo").read_text().splitlines()
              if str(root) in ln]
    conmons = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"conmon" in cmdline.split(b"\0")[0] and str(root).encode() in cmdline:
                conmons.append(pid)
    return mounts, conmons


def test_run_rm_cycles_leave_nothing_behind(daemon: PortsideDaemon, root: Path) -> None:
    ids = []
    for _ in range(10):
        daemon.cli("run", "--rm", "-v", "/anon", "busybox", "true")
    for i in range(5):
        ids.append(daemon.cli("run", "-d", "--name", f"c{i}", "busybox", "sleep", "300"
                              ).stdout.strip())
    assert len(_ours(root)[1]) == 5
    daemon.cli("rm", "-f", *[f"c{i}" for i in range(5)])
    mounts, conmons = _ours(root)
    assert mounts == [] and conmons == []
    assert list((root / "containers").iterdir()) == []
    assert [p for p in (root / "runtime").iterdir() if not p.name.startswith(".")] == []
    assert daemon.cli("volume", "ls", "-q").stdout == ""  # --rm took the anonymous volumes
    leftovers = [str(p) for cid in ids for p in Path("/sys/fs/cgroup").glob(f"*/portside/{cid}")]
    leftovers += [str(p) for cid in ids for p in Path("/sys/fs/cgroup").glob(f"*/*/portside/{cid}")]
    assert leftovers == []
