"""cgroup layout detection from mountinfo."""

from __future__ import annotations

from portside.runtime import cgroups

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
V2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
JOINED = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"


def test_hybrid() -> None:
    layout = cgroups.parse_mountinfo(HYBRID)
    assert layout.mode == "hybrid"
    assert layout.v1["memory"] == "/sys/fs/cgroup/memory"
    assert layout.v1["systemd"] == "/sys/fs/cgroup/systemd"
    assert layout.v2 == "/sys/fs/cgroup/unified"
    assert layout.needs_private_mount_ns("crun")
    assert layout.needs_private_mount_ns("/usr/bin/crun")
    assert not layout.needs_private_mount_ns("runc")
    assert "/sys/fs/cgroup/unified" in layout.hierarchies()


def test_pure_v2() -> None:
    layout = cgroups.parse_mountinfo(V2)
    assert layout.mode == "v2"
    assert not layout.needs_private_mount_ns("crun")
    assert str(layout.controller_dir("memory", "/portside/x")) == "/sys/fs/cgroup/portside/x"


def test_joined_controllers_v1() -> None:
    layout = cgroups.parse_mountinfo(JOINED)
    assert layout.mode == "v1"
    assert layout.v1["cpu"] == layout.v1["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct"
    assert layout.hierarchies() == ["/sys/fs/cgroup/cpu,cpuacct"]


def test_stats_of_missing_cgroup_are_zero() -> None:
    layout = cgroups.parse_mountinfo(HYBRID)
    s = cgroups.stats(layout, "/portside-nonexistent/x")
    assert set(s.values()) == {0}
    assert cgroups.pids(layout, "/portside-nonexistent/x") == []
