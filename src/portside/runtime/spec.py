"""The OCI runtime spec (config.json) for a ContainerSpec, with Docker's defaults:
capabilities, mounts, masked and read-only paths, devices, seccomp, rlimits.

Section names in comments refer to the OCI runtime spec (config.md, config-linux.md).
"""

from __future__ import annotations

import os
import resource
from pathlib import Path
from typing import Any

from portside.errors import InvalidArgument
from portside.runtime import seccomp as seccomp_mod
from portside.runtime.cgroups import Layout
from portside.runtime.errors import RuntimeFailed
from portside.runtime.types import ContainerSpec, Mount
from portside.runtime.users import ExecUser

DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]

# Index = capability number (linux/capability.h).
ALL_CAP_NAMES = [
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
    "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN",
    "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE",
    "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME",
    "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ",
    "PERFMON", "BPF", "CHECKPOINT_RESTORE",
]

MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
]
READONLY_PATHS = [
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
]

DEFAULT_ENV_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
INIT_PATH = "/sbin/docker-init"
DEFAULT_SHM_SIZE = 64 * 1024 * 1024
NOFILE_DEFAULT = 1048576

# Docker's device cgroup rules: deny all, then mknod of any device, and use of the basics.
_DEVICE_RULES: list[dict[str, Any]] = [
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    *[{"allow": True, "type": "c", "major": ma, "minor": mi, "access": "rwm"}
      for ma, mi in ((1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2), (10, 200))],
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},  # /dev/pts/*
]


def host_cap_names() -> list[str]:
    """Capabilities we can hand out: the kernel's, within our own bounding set (root here
    lacks CAP_SYS_RESOURCE; asking the runtime for it fails the container)."""
    try:
        last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except (OSError, ValueError):
        last = len(ALL_CAP_NAMES) - 1
    bounding = (1 << (last + 1)) - 1
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapBnd:"):
                bounding = int(line.split()[1], 16)
    except OSError:
        pass
    return ["CAP_" + n for i, n in enumerate(ALL_CAP_NAMES[: last + 1]) if bounding >> i & 1]


def _norm_cap(name: str) -> str:
    n = name.strip().upper()
    if n == "ALL":
        return n
    n = n if n.startswith("CAP_") else "CAP_" + n
    if n[4:] not in ALL_CAP_NAMES:
        raise InvalidArgument(f"unknown capability {name!r}")
    return n


def capabilities(spec: ContainerSpec) -> list[str]:
    """The container's capability set: Docker's defaults with --cap-add/--cap-drop."""
    host = host_cap_names()
    if spec.privileged:
        return host
    adds = [_norm_cap(c) for c in spec.cap_add]
    drops = [_norm_cap(c) for c in spec.cap_drop]
    caps = list(DEFAULT_CAPS)
    caps = [] if "ALL" in drops else [c for c in caps if c not in drops]
    if "ALL" in adds:
        caps = [c for c in host if c not in drops or "ALL" in drops]
    else:
        caps += [c for c in adds if c not in caps]
    return [c for c in caps if c in host]


_RLIMITS = {
    "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA", "fsize": "RLIMIT_FSIZE",
    "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK", "msgqueue": "RLIMIT_MSGQUEUE",
    "nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE", "nproc": "RLIMIT_NPROC",
    "rss": "RLIMIT_RSS", "rtprio": "RLIMIT_RTPRIO", "rttime": "RLIMIT_RTTIME",
    "sigpending": "RLIMIT_SIGPENDING", "stack": "RLIMIT_STACK", "as": "RLIMIT_AS",
}


def rlimits(ulimits: dict[str, tuple[int, int]]) -> list[dict[str, Any]]:
    """Rlimits clamped to our own hard limits: without CAP_SYS_RESOURCE the runtime
    cannot raise a hard limit, and asking would fail the whole container."""
    wanted = {"nofile": (NOFILE_DEFAULT, NOFILE_DEFAULT), **ulimits}
    out = []
    for name, (soft, hard) in wanted.items():
        key = _RLIMITS.get(name.lower())
        if key is None:
            raise InvalidArgument(f"unknown ulimit {name!r}")
        _, own_hard = resource.getrlimit(getattr(resource, key))
        if own_hard != resource.RLIM_INFINITY:
            hard = own_hard if hard < 0 else min(hard, own_hard)
            soft = hard if soft < 0 else min(soft, hard)
        out.append({"type": key, "soft": soft, "hard": hard})
    return out


def _default_mounts(spec: ContainerSpec, layout: Layout) -> list[dict[str, Any]]:
    sys_opts = ["nosuid", "noexec", "nodev", "rw" if spec.privileged else "ro"]
    shm = spec.shm_size or DEFAULT_SHM_SIZE
    return [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_opts},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime",
                     "rw" if spec.privileged else "ro"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm}"]},
    ]


def _user_mount(m: Mount) -> dict[str, Any]:
    if not m.destination.startswith("/"):
        raise InvalidArgument(f"mount destination {m.destination!r} is not an absolute path")
    if m.type == "tmpfs":
        opts = list(m.options)
        for flag, off in (("nosuid", "suid"), ("nodev", "dev"), ("noexec", "exec")):
            if flag not in opts and off not in opts:
                opts.append(flag)
        return {"destination": m.destination, "type": "tmpfs", "source": "tmpfs",
                "options": opts}
    if m.type in ("bind", "volume"):
        if not m.source.startswith("/"):
            raise InvalidArgument(f"bind source {m.source!r} for {m.destination} is not absolute")
        if not os.path.exists(m.source):
            raise InvalidArgument(f"bind source path does not exist: {m.source}")
        opts = list(m.options)
        if "bind" not in opts and "rbind" not in opts:
            opts.insert(0, "rbind")
        if not any(o in opts for o in ("private", "rprivate", "slave", "rslave", "shared",
                                        "rshared")):
            opts.append("rprivate")
        return {"destination": m.destination, "type": "bind", "source": m.source,
                "options": opts}
    return {"destination": m.destination, "type": m.type, "source": m.source,
            "options": list(m.options)}


def _host_devices() -> list[dict[str, Any]]:
    """Every device node directly under the host's /dev, for --privileged."""
    import stat

    out = []
    for entry in sorted(os.scandir("/dev"), key=lambda e: e.name):
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        kind = "c" if stat.S_ISCHR(st.st_mode) else "b" if stat.S_ISBLK(st.st_mode) else None
        if kind is None or entry.name in ("console", "ptmx", "tty"):
            continue
        out.append({"path": entry.path, "type": kind, "major": os.major(st.st_rdev),
                    "minor": os.minor(st.st_rdev), "fileMode": st.st_mode & 0o7777,
                    "uid": st.st_uid, "gid": st.st_gid})
    return out


def resources(spec: ContainerSpec) -> dict[str, Any]:
    """linux.resources: Docker's memory/swap, CPU and pids semantics, device rules."""
    r = spec.resources
    out: dict[str, Any] = {}
    mem: dict[str, Any] = {}
    if r.memory:
        mem["limit"] = r.memory
        if r.memory_swap is None or r.memory_swap == 0:
            mem["swap"] = 2 * r.memory  # Docker: swap defaults to as much as the memory
        elif r.memory_swap == -1:
            mem["swap"] = -1
        else:
            if r.memory_swap < r.memory:
                raise InvalidArgument("memory-swap must be at least as large as memory")
            mem["swap"] = r.memory_swap
    cpu: dict[str, Any] = {}
    if r.cpu_shares:
        cpu["shares"] = r.cpu_shares
    if r.cpu_quota:
        cpu["quota"] = r.cpu_quota
        cpu["period"] = r.cpu_period or 100000
    elif r.cpu_period:
        cpu["period"] = r.cpu_period
    if r.memory_reservation:
        mem["reservation"] = r.memory_reservation
    if r.oom_kill_disable:
        mem["disableOOMKiller"] = True
    if mem:
        out["memory"] = mem
    if r.cpuset_cpus:
        cpu["cpus"] = r.cpuset_cpus
    if r.cpuset_mems:
        cpu["mems"] = r.cpuset_mems
    if cpu:
        out["cpu"] = cpu
    if r.pids_limit and r.pids_limit > 0:
        out["pids"] = {"limit": r.pids_limit}  # (0 or -1: no limit; update lifts one itself)
    if r.blkio_weight:
        if not 10 <= r.blkio_weight <= 1000:
            raise InvalidArgument("blkio-weight must be between 10 and 1000")
        out["blockIO"] = {"weight": r.blkio_weight}
    rules = [{"allow": True, "access": "rwm"}] if spec.privileged else list(_DEVICE_RULES)
    for dev in _devices(spec):
        rules.append({"allow": True, "type": dev["type"], "major": dev["major"],
                      "minor": dev["minor"], "access": dev.pop("_access")})
    out["devices"] = rules
    return out


def _devices(spec: ContainerSpec) -> list[dict[str, Any]]:
    """linux.devices entries for `--device` (with their cgroup access in `_access`)."""
    import stat

    out = []
    for d in spec.devices:
        try:
            st = os.stat(d.path_on_host)
        except OSError:
            raise InvalidArgument(f"device {d.path_on_host!r} does not exist") from None
        if stat.S_ISCHR(st.st_mode):
            kind = "c"
        elif stat.S_ISBLK(st.st_mode):
            kind = "b"
        else:
            raise InvalidArgument(f"{d.path_on_host!r} is not a device")
        if not d.permissions or set(d.permissions) - set("rwm"):
            raise InvalidArgument(f"bad device permissions {d.permissions!r} for "
                                  f"{d.path_on_host}")
        out.append({"path": d.path_in_container or d.path_on_host, "type": kind,
                    "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
                    "fileMode": st.st_mode & 0o777, "uid": 0, "gid": 0,
                    "_access": d.permissions})
    return out


def _env(spec: ContainerSpec, user: ExecUser, hostname: str) -> list[str]:
    env = list(spec.env)
    keys = {e.partition("=")[0] for e in env}
    if "PATH" not in keys:
        env.insert(0, DEFAULT_ENV_PATH)
    if "HOSTNAME" not in keys:
        env.append(f"HOSTNAME={hostname}")
    if spec.tty and "TERM" not in keys:
        env.append("TERM=xterm")
    if "HOME" not in keys:
        env.append(f"HOME={user.home}")
    return env


def process(spec: ContainerSpec, user: ExecUser, caps: list[str], args: list[str],
            env: list[str], cwd: str, tty: bool) -> dict[str, Any]:
    """The `process` object (also the exec process.json)."""
    if not args:
        raise InvalidArgument("no command specified")
    proc: dict[str, Any] = {
        "terminal": tty,
        "user": {"uid": user.uid, "gid": user.gid},
        "args": args,
        "env": env,
        "cwd": cwd or "/",
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "rlimits": rlimits(spec.ulimits),
        "noNewPrivileges": spec.no_new_privileges,
    }
    if user.additional_gids:
        proc["user"]["additionalGids"] = user.additional_gids
    if not cwd.startswith("/"):
        raise InvalidArgument(f"working directory {cwd!r} is not an absolute path")
    return proc


def build(spec: ContainerSpec, user: ExecUser, layout: Layout, cgroups_path: str,
          root_path: str, init_binary: str | None = None) -> dict[str, Any]:
    """The whole config.json for `spec`."""
    caps = capabilities(spec)
    hostname = spec.hostname or spec.id[:12]
    args = list(spec.args)
    mounts = _default_mounts(spec, layout)
    user_mounts = [_user_mount(m) for m in spec.mounts]
    if spec.init and init_binary:
        user_mounts.append({"destination": INIT_PATH, "type": "bind", "source": init_binary,
                            "options": ["bind", "ro", "nosuid", "nodev", "rprivate"]})
        args = [INIT_PATH, "--", *args]
    wanted = {m["destination"].rstrip("/") for m in user_mounts}
    mounts = [m for m in mounts if m["destination"] not in wanted]
    # Parents before children (Docker sorts by path depth).
    mounts += sorted(user_mounts, key=lambda m: m["destination"].rstrip("/").count("/"))

    namespaces: list[dict[str, str]] = [{"type": t} for t in ("pid", "mount", "uts", "ipc")]
    net = spec.network_namespace
    if net is None:
        namespaces.append({"type": "network"})
    elif net != "host":
        namespaces.append({"type": "network", "path": net})
    if layout.mode == "v2":
        namespaces.append({"type": "cgroup"})

    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "cgroupsPath": cgroups_path,
        "resources": resources(spec),
        "maskedPaths": (spec.masked_paths if spec.masked_paths is not None
                        else [] if spec.privileged else MASKED_PATHS),
        "readonlyPaths": (spec.readonly_paths if spec.readonly_paths is not None
                          else [] if spec.privileged else READONLY_PATHS),
        "rootfsPropagation": "rprivate",
    }
    devices = _host_devices() if spec.privileged else []
    for dev in _devices(spec):
        dev.pop("_access")
        devices = [d for d in devices if d["path"] != dev["path"]] + [dev]
    if devices:
        linux["devices"] = devices
    if spec.sysctls:
        linux["sysctl"] = dict(spec.sysctls)
    profile = seccomp_mod.load(spec.seccomp, caps, spec.privileged)
    if profile is not None:
        linux["seccomp"] = profile

    annotations = {"io.portside.name": spec.name, "io.portside.stop-signal": spec.stop_signal}
    annotations.update(spec.labels)
    return {
        "ociVersion": "1.0.2",
        "process": process(spec, user, caps, args, _env(spec, user, hostname), spec.cwd,
                           spec.tty),
        "root": {"path": root_path, "readonly": spec.read_only},
        "hostname": hostname,
        "mounts": mounts,
        "linux": linux,
        "annotations": annotations,
    }


def init_binary() -> str:
    """The init to bind at /sbin/docker-init: a static tini or catatonit."""
    # Statically linked ones only: the image may have no libc.
    for path in ("/usr/bin/tini-static", "/usr/bin/catatonit",
                 "/usr/libexec/podman/catatonit"):
        if os.access(path, os.X_OK):
            return path
    raise RuntimeFailed("-", "create", "--init needs tini or catatonit (apt-get install tini)")
