"""config.json generation: Docker's defaults and the flags that change them."""

from __future__ import annotations

import resource

import pytest

from portside.errors import InvalidArgument
from portside.runtime import ContainerSpec, Mount, Resources
from portside.runtime import spec as specgen
from portside.runtime.cgroups import Layout
from portside.runtime.users import ExecUser

V1 = Layout({"memory": "/sys/fs/cgroup/memory", "pids": "/sys/fs/cgroup/pids"}, None)
V2 = Layout({}, "/sys/fs/cgroup")


def build(layout: Layout = V1, **kw: object) -> dict:  # type: ignore[type-arg]
    spec = ContainerSpec(id="a" * 64, args=kw.pop("args", ["sh"]), **kw)  # type: ignore[arg-type]
    return specgen.build(spec, ExecUser(home="/root"), layout, "/portside/x", "/rootfs",
                         "/usr/bin/tini-static")


def test_docker_default_capabilities() -> None:
    caps = build()["process"]["capabilities"]
    assert sorted(caps["bounding"]) == sorted(specgen.DEFAULT_CAPS)
    assert caps["bounding"] == caps["effective"] == caps["permitted"]
    assert "inheritable" not in caps and "ambient" not in caps


def test_cap_add_drop_and_all() -> None:
    caps = build(cap_add=["net_admin"], cap_drop=["CAP_CHOWN"])["process"]["capabilities"]
    assert "CAP_NET_ADMIN" in caps["bounding"] and "CAP_CHOWN" not in caps["bounding"]
    caps = build(cap_drop=["ALL"], cap_add=["KILL"])["process"]["capabilities"]
    assert caps["bounding"] == ["CAP_KILL"]
    caps = build(cap_add=["ALL"])["process"]["capabilities"]
    assert set(caps["bounding"]) == set(specgen.host_cap_names())
    with pytest.raises(InvalidArgument, match="capability"):
        build(cap_add=["NOT_A_CAP"])


def test_privileged_gets_every_cap_no_seccomp_no_masks() -> None:
    cfg = build(privileged=True)
    assert set(cfg["process"]["capabilities"]["bounding"]) == set(specgen.host_cap_names())
    assert "seccomp" not in cfg["linux"]
    assert cfg["linux"]["maskedPaths"] == [] and cfg["linux"]["readonlyPaths"] == []
    sysfs = next(m for m in cfg["mounts"] if m["destination"] == "/sys")
    assert "rw" in sysfs["options"]


def test_masked_and_readonly_paths_are_dockers() -> None:
    linux = build()["linux"]
    for p in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware",
              "/proc/acpi", "/proc/scsi", "/sys/devices/virtual/powercap"):
        assert p in linux["maskedPaths"]
    for p in ("/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs"):
        assert p in linux["readonlyPaths"]


def test_rlimits_never_exceed_our_hard_limits() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    rl = {r["type"]: r for r in build(ulimits={"nofile": (10**7, 10**7)})["process"]["rlimits"]}
    nofile = rl["RLIMIT_NOFILE"]
    if hard != resource.RLIM_INFINITY:
        assert nofile["hard"] <= hard and nofile["soft"] <= nofile["hard"]
    with pytest.raises(InvalidArgument):
        build(ulimits={"bogus": (1, 1)})


def test_default_mounts_and_user_mounts_sorted() -> None:
    cfg = build(mounts=[Mount("/data/sub", "tmpfs", "tmpfs", []),
                        Mount("/data", "bind", "/", ["ro"]),
                        Mount("/dev/shm", "tmpfs", "tmpfs", ["size=1m"])])
    dests = [m["destination"] for m in cfg["mounts"]]
    for d in ("/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue"):
        assert d in dests
    assert dests.index("/data") < dests.index("/data/sub")
    assert dests.count("/dev/shm") == 1
    shm = next(m for m in cfg["mounts"] if m["destination"] == "/dev/shm")
    assert shm["options"][0] == "size=1m"
    bind = next(m for m in cfg["mounts"] if m["destination"] == "/data")
    assert bind["options"][:2] == ["rbind", "ro"]
    tmp = next(m for m in cfg["mounts"] if m["destination"] == "/data/sub")
    assert {"nosuid", "nodev", "noexec"} <= set(tmp["options"])


def test_missing_bind_source_and_relative_destination() -> None:
    with pytest.raises(InvalidArgument, match="does not exist"):
        build(mounts=[Mount("/x", "bind", "/definitely/not/here")])
    with pytest.raises(InvalidArgument, match="absolute"):
        build(mounts=[Mount("x", "tmpfs", "tmpfs")])


def test_namespaces_network_and_cgroup() -> None:
    ns = {n["type"]: n for n in build()["linux"]["namespaces"]}
    assert set(ns) == {"pid", "mount", "uts", "ipc", "network"}
    assert "path" not in ns["network"]
    ns = {n["type"]: n for n in build(network_namespace="host")["linux"]["namespaces"]}
    assert "network" not in ns
    ns = {n["type"]: n for n in build(network_namespace="/run/netns/x")["linux"]["namespaces"]}
    assert ns["network"]["path"] == "/run/netns/x"
    ns = {n["type"]: n for n in build(V2)["linux"]["namespaces"]}
    assert "cgroup" in ns


def test_resources_docker_semantics() -> None:
    r = build(resources=Resources(memory=64 << 20, cpu_quota=50000, cpu_shares=512,
                                  pids_limit=100))["linux"]["resources"]
    assert r["memory"] == {"limit": 64 << 20, "swap": 128 << 20}
    assert r["cpu"] == {"shares": 512, "quota": 50000, "period": 100000}
    assert r["pids"] == {"limit": 100}
    r = build(resources=Resources(memory=64 << 20, memory_swap=-1))["linux"]["resources"]
    assert r["memory"]["swap"] == -1
    with pytest.raises(InvalidArgument, match="memory-swap"):
        build(resources=Resources(memory=64 << 20, memory_swap=32 << 20))
    assert "pids" not in build(resources=Resources(pids_limit=-1))["linux"]["resources"]


def test_init_env_hostname_readonly() -> None:
    cfg = build(args=["app", "-x"], init=True, env=["A=1"], tty=True, read_only=True,
                hostname="h1")
    assert cfg["process"]["args"] == ["/sbin/docker-init", "--", "app", "-x"]
    init = next(m for m in cfg["mounts"] if m["destination"] == "/sbin/docker-init")
    assert init["source"] == "/usr/bin/tini-static" and "ro" in init["options"]
    env = cfg["process"]["env"]
    assert env[0].startswith("PATH=") and "A=1" in env and "TERM=xterm" in env
    assert "HOSTNAME=h1" in env and "HOME=/root" in env
    assert cfg["hostname"] == "h1"
    assert cfg["root"] == {"path": "/rootfs", "readonly": True}
    assert build()["hostname"] == "a" * 12


def test_seccomp_default_applied_and_unconfined() -> None:
    sc = build()["linux"]["seccomp"]
    assert sc["defaultAction"] == "SCMP_ACT_ERRNO"
    assert build(seccomp="unconfined")["linux"].get("seccomp") is None


def test_no_command_is_an_error() -> None:
    with pytest.raises(InvalidArgument, match="no command"):
        build(args=[])


def test_relative_cwd_is_an_error() -> None:
    with pytest.raises(InvalidArgument, match="working directory"):
        build(cwd="tmp")


def test_sysctls_and_annotations() -> None:
    cfg = build(sysctls={"net.ipv4.ip_forward": "1"}, labels={"a": "b"}, name="web")
    assert cfg["linux"]["sysctl"] == {"net.ipv4.ip_forward": "1"}
    assert cfg["annotations"]["a"] == "b"
    assert cfg["annotations"]["io.portside.name"] == "web"


def test_devices_cgroup_defaults() -> None:
    devs = build()["linux"]["resources"]["devices"]
    assert devs[0] == {"allow": False, "access": "rwm"}
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"} in devs


def test_extra_resources_and_devices() -> None:
    from portside.runtime import Device

    cfg = build(resources=Resources(memory=64 << 20, memory_reservation=32 << 20,
                                    oom_kill_disable=True, cpuset_cpus="0-1",
                                    cpuset_mems="0", blkio_weight=500),
                devices=[Device("/dev/null", "/dev/mynull", "r")])
    r = cfg["linux"]["resources"]
    assert r["memory"]["reservation"] == 32 << 20 and r["memory"]["disableOOMKiller"]
    assert r["cpu"] == {"cpus": "0-1", "mems": "0"}
    assert r["blockIO"] == {"weight": 500}
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"} in r["devices"]
    dev = cfg["linux"]["devices"][0]
    assert dev["path"] == "/dev/mynull" and (dev["major"], dev["minor"]) == (1, 3)
    with pytest.raises(InvalidArgument, match="blkio"):
        build(resources=Resources(blkio_weight=5))
    with pytest.raises(InvalidArgument, match="not a device"):
        build(devices=[Device("/etc/passwd")])
    with pytest.raises(InvalidArgument, match="permissions"):
        build(devices=[Device("/dev/null", permissions="x")])
