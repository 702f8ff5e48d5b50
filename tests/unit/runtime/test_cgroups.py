"""cgroup layout detection from mountinfo."""

from __future__ import annotations

from pathlib import Path

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


def _write(d: Path, files: dict[str, str]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text)


def test_stats_from_a_v2_tree(tmp_path: Path) -> None:
    layout = cgroups.Layout({}, str(tmp_path))
    _write(tmp_path / "portside" / "c1", {
        "cpu.stat": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\n"
                    "nr_throttled 1\nthrottled_usec 20\n",
        "memory.current": "4096\n", "memory.max": "max\n",
        "memory.stat": "anon 100\ninactive_file 300\n",
        "memory.events": "low 0\noom 1\noom_kill 1\n",
        "pids.current": "3\n", "pids.max": "100\n",
        "io.stat": "8:0 rbytes=10 wbytes=20 rios=1 wios=2\n8:16 rbytes=1 wbytes=2\n",
        "cgroup.procs": "11\n12\n", "cgroup.freeze": "1\n",
    })
    s = cgroups.stats(layout, "/portside/c1")
    assert s["cpu_usage_ns"] == 1_500_000 and s["cpu_user_ns"] == 1_000_000
    assert s["cpu_throttled_periods"] == 1 and s["cpu_throttled_ns"] == 20_000
    assert s["memory_usage"] == 4096 and s["memory_limit"] == 0 and s["memory_cache"] == 300
    assert (s["pids_current"], s["pids_limit"]) == (3, 100)
    assert (s["blkio_read"], s["blkio_write"]) == (11, 22)
    assert s["oom_kills"] == 1
    assert cgroups.pids(layout, "/portside/c1") == [11, 12]
    assert cgroups.frozen(layout, "/portside/c1")


def test_stats_from_a_v1_tree(tmp_path: Path) -> None:
    ctrl = {c: str(tmp_path / c) for c in ("cpu", "cpuacct", "memory", "pids", "blkio",
                                           "freezer")}
    layout = cgroups.Layout(ctrl, None)
    rel = "portside/c1"
    _write(tmp_path / "cpuacct" / rel, {"cpuacct.usage": "777\n",
                                        "cpuacct.stat": "user 2\nsystem 1\n"})
    _write(tmp_path / "cpu" / rel, {"cpu.stat": "nr_periods 5\nnr_throttled 2\n"
                                                "throttled_time 99\n"})
    _write(tmp_path / "memory" / rel, {
        "memory.usage_in_bytes": "8192\n", "memory.limit_in_bytes": "9223372036854771712\n",
        "memory.stat": "total_inactive_file 100\n",
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"})
    _write(tmp_path / "pids" / rel, {"pids.current": "2\n", "pids.max": "max\n",
                                     "cgroup.procs": "5\n"})
    _write(tmp_path / "blkio" / rel, {"blkio.throttle.io_service_bytes_recursive":
                                      "8:0 Read 4\n8:0 Write 6\n8:0 Total 10\nTotal 10\n"})
    _write(tmp_path / "freezer" / rel, {"freezer.state": "THAWED\n"})
    s = cgroups.stats(layout, "/" + rel)
    assert s["cpu_usage_ns"] == 777 and s["cpu_user_ns"] > 0
    assert s["cpu_throttled_ns"] == 99
    assert s["memory_usage"] == 8192 and s["memory_limit"] == 0
    assert s["pids_limit"] == 0 and s["pids_current"] == 2
    assert (s["blkio_read"], s["blkio_write"]) == (4, 6)
    assert s["oom_kills"] == 2
    assert cgroups.pids(layout, "/" + rel) == [5]
    assert not cgroups.frozen(layout, "/" + rel)


def test_remove_deepest_first(tmp_path: Path) -> None:
    layout = cgroups.Layout({"memory": str(tmp_path / "memory")}, str(tmp_path / "unified"))
    for h in ("memory", "unified"):
        (tmp_path / h / "portside" / "c1" / "sub").mkdir(parents=True)
    assert cgroups.remove(layout, "/portside/c1") == []
    assert not (tmp_path / "memory" / "portside" / "c1").exists()
    assert (tmp_path / "memory" / "portside").exists()


def test_process_table_of_ourselves() -> None:
    import os

    from portside.runtime.procs import process_table, start_time

    rows = process_table([os.getpid(), 999_999_999])
    assert len(rows) == 1
    row = rows[0]
    assert row["pid"] == os.getpid() and row["ppid"] == os.getppid()
    assert row["uid"] == os.getuid() and "python" in row["cmd"]
    assert start_time(os.getpid()) is not None and start_time(999_999_999) is None
