"""What a container must not be able to do, and the limits it must not exceed."""

from __future__ import annotations

import os

import pytest

from portside.runtime import Mount, Resources

from .conftest import Harness


def _cap_eff(status: str) -> int:
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    raise AssertionError("no CapEff")


def test_cannot_mount(harness: Harness) -> None:
    code, _, err = harness.run("mount", "-t", "tmpfs", "none", "/mnt")
    assert code != 0
    assert "denied" in err or "not permitted" in err


def test_cannot_write_sysrq_trigger_or_proc_sys(harness: Harness) -> None:
    targets = ["/proc/sys/vm/drop_caches"]
    if os.path.exists("/proc/sysrq-trigger"):  # absent on kernels without MAGIC_SYSRQ
        targets.append("/proc/sysrq-trigger")
    for target in targets:
        code, _, err = harness.run("sh", "-c", f"echo h > {target}")
        assert code != 0
        assert "Read-only file system" in err, target


def test_masked_paths_are_empty(harness: Harness) -> None:
    masked = [p for p in ("/proc/keys", "/proc/timer_list", "/proc/kcore") if os.path.exists(p)]
    assert masked, "none of the masked /proc files exists on this kernel"
    script = "; ".join(f"wc -c < {p}" for p in masked) + "; ls /sys/firmware | wc -l"
    code, out, _ = harness.run("sh", "-c", script)
    assert code == 0
    assert out.split() == ["0"] * (len(masked) + 1)


def test_cannot_load_modules(harness: Harness) -> None:
    code, out, err = harness.run(
        "sh", "-c", "head -c 4096 /dev/zero > /tmp/m.ko; insmod /tmp/m.ko; "
        "grep CapEff /proc/self/status")
    assert code == 0
    assert "not permitted" in err or "denied" in err
    cap_sys_module = 1 << 16
    assert not _cap_eff(out) & cap_sys_module


def test_sees_only_its_own_processes(harness: Harness) -> None:
    code, out, _ = harness.run("ps", "-o", "pid,args")
    assert code == 0
    rows = [line.split(None, 1) for line in out.splitlines()[1:]]
    assert rows == [["1", "ps -o pid,args"]]


def test_no_network_but_loopback(harness: Harness) -> None:
    code, out, _ = harness.run("ls", "/sys/class/net")
    assert code == 0
    assert out.split() == ["lo"]


def test_default_capabilities_and_cap_drop_add(harness: Harness) -> None:
    code, out, _ = harness.run("grep", "CapEff", "/proc/self/status")
    # Docker's default set: chown dac_override fowner fsetid kill setgid setuid setpcap
    # net_bind_service net_raw sys_chroot mknod audit_write setfcap
    assert _cap_eff(out) == 0xA80425FB
    code, out, _ = harness.run("grep", "CapEff", "/proc/self/status",
                               cap_drop=["chown"], cap_add=["NET_ADMIN"])
    eff = _cap_eff(out)
    assert not eff & 1 and eff & (1 << 12)
    code, _, _ = harness.run("chown", "1000", "/etc/passwd", cap_drop=["ALL"])
    assert code != 0


def test_privileged_can_mount(harness: Harness) -> None:
    code, out, _ = harness.run("sh", "-c", "mount -t tmpfs none /mnt && echo mounted",
                               privileged=True)
    assert (code, out) == (0, "mounted\n")


def test_no_new_privileges_flag(harness: Harness) -> None:
    code, out, _ = harness.run("grep", "NoNewPrivs", "/proc/self/status",
                               no_new_privileges=True)
    assert out.split() == ["NoNewPrivs:", "1"]


def test_seccomp_default_blocks_unshare(harness: Harness) -> None:
    code, out, _ = harness.run("sh", "-c", "grep Seccomp: /proc/self/status; unshare -n true",
                               cap_add=["SYS_ADMIN"], seccomp="unconfined")
    assert out.split()[:2] == ["Seccomp:", "0"]
    code, out, err = harness.run("sh", "-c", "grep Seccomp: /proc/self/status; unshare -n true")
    assert out.split()[:2] == ["Seccomp:", "2"]
    assert code != 0


def test_memory_limit_oom_kill_shows_in_state(harness: Harness) -> None:
    spec = harness.spec("dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1",
                        resources=Resources(memory=32 << 20, memory_swap=32 << 20))
    rt = harness.rt
    rt.create(spec)
    rt.start(spec.id)
    code = rt.wait(spec.id, 60)
    st = rt.state(spec.id)
    assert code == 137
    assert st.oom_killed
    rt.delete(spec.id)


def test_pids_limit_stops_a_fork_bomb(harness: Harness) -> None:
    code, out, err = harness.run(
        "sh", "-c", "for i in $(seq 1 40); do sleep 5 & done; echo survived",
        resources=Resources(pids_limit=10))
    assert code != 0
    assert "survived" not in out
    assert "can't fork" in err or "Resource temporarily unavailable" in err


def test_cpu_and_memory_limits_reach_the_cgroup(harness: Harness) -> None:
    spec = harness.spec("sleep", "100", resources=Resources(
        memory=48 << 20, cpu_quota=50000, cpu_period=100000, cpu_shares=512))
    rt = harness.rt
    rt.create(spec)
    rt.start(spec.id)
    from portside.runtime import cgroups

    layout = cgroups.detect()
    cgpath = f"/{rt.cgroup_parent}/{spec.id}"
    if layout.mode == "v2":
        d = layout.controller_dir("cpu", cgpath)
        assert d is not None
        assert (d / "cpu.max").read_text().split() == ["50000", "100000"]
    else:
        d = layout.controller_dir("cpu", cgpath)
        assert d is not None
        assert (d / "cpu.cfs_quota_us").read_text().strip() == "50000"
        assert (d / "cpu.shares").read_text().strip() == "512"
    assert rt.stats(spec.id)["memory_limit"] == 48 << 20
    rt.delete(spec.id, force=True)


def test_sysctl_and_shm_size(harness: Harness) -> None:
    code, out, _ = harness.run(
        "sh", "-c", "cat /proc/sys/net/ipv4/ip_unprivileged_port_start; df -k /dev/shm | tail -1",
        sysctls={"net.ipv4.ip_unprivileged_port_start": "0"}, shm_size=8 << 20)
    assert code == 0
    first, df = out.splitlines()
    assert first == "0"
    assert df.split()[1] == str(8 * 1024)


@pytest.mark.parametrize("opts", [["size=2m"], ["size=2m", "exec"]])
def test_tmpfs_mount_options(harness: Harness, opts: list[str]) -> None:
    code, out, _ = harness.run("grep", " /scratch ", "/proc/mounts",
                               mounts=[Mount("/scratch", "tmpfs", "tmpfs", opts)])
    assert code == 0
    flags = out.split()[3].split(",")
    assert "nosuid" in flags and "nodev" in flags
    assert ("noexec" in flags) == ("exec" not in opts)


def test_host_network_and_joined_netns(harness: Harness) -> None:
    import subprocess
    import uuid

    before = set(os.listdir("/sys/class/net"))
    code, out, _ = harness.run("ls", "/sys/class/net", network_namespace="host")
    # other tests may add or remove links meanwhile: the stable ones must all be seen
    stable = before & set(os.listdir("/sys/class/net"))
    assert code == 0 and len(stable) > 1 and stable <= set(out.split())
    name = f"pst-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "add", "br7", "type", "bridge"], check=True)
        code, out, _ = harness.run("ls", "/sys/class/net", network_namespace=f"/run/netns/{name}")
        assert code == 0 and out.split() == ["br7", "lo"]
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


def test_device_and_cpuset(harness: Harness) -> None:
    from portside.runtime import Device

    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse on this host")
    code, out, err = harness.run(
        "sh", "-c", "ls -l /dev/myfuse; head -c 0 /dev/myfuse && echo opened; "
        "grep Cpus_allowed_list /proc/self/status",
        devices=[Device("/dev/fuse", "/dev/myfuse", "rw")],
        resources=Resources(cpuset_cpus="0", memory=64 << 20, memory_reservation=32 << 20))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("c") and "10," in lines[0]
    assert "opened" in lines
    assert lines[-1].split() == ["Cpus_allowed_list:", "0"]
    # without --device the node is neither there nor allowed by the device cgroup
    code, _, err = harness.run("sh", "-c", "mknod /tmp/f c 10 229 && head -c 0 /tmp/f")
    assert code != 0 and "not permitted" in err


def test_missing_device_is_rejected(harness: Harness) -> None:
    from portside.errors import InvalidArgument
    from portside.runtime import Device

    with pytest.raises(InvalidArgument, match="does not exist"):
        harness.rt.create(harness.spec("true", devices=[Device("/dev/nonexistent0")]))
    assert harness.rt.list() == []
