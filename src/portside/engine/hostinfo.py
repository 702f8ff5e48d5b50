"""The daemon and its host, measured: what `docker info` and `docker version` show, in
Docker's shapes, for the `/info` and `/version` handlers and the in-process engine.

Host facts come from the kernel (/proc, cgroupfs, uname), the runtimes' own `--version`,
and the engine's records; nothing is a made-up constant except the names Docker clients
expect (`overlay2`, `cgroupfs`).
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
import threading
import uuid
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from portside import __version__
from portside.engine.containers import Engine

API_VERSION = "1.43"
MIN_API_VERSION = "1.24"
RUNTIMES = ("crun", "runc")


@lru_cache(maxsize=8)
def tool_version(name: str) -> tuple[str, str]:
    """(version, commit) of a runtime or conmon, from its `--version`."""
    path = shutil.which(name)
    if path is None:
        return "", ""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True,
                             timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "", ""
    version = commit = ""
    for line in out.splitlines():
        key, _, value = line.partition(":")
        words = line.split()
        if not version and "version" in words:
            version = words[words.index("version") + 1] if words[-1] != "version" else ""
        if key.strip() == "commit":
            commit = value.strip()
    return version, commit


@lru_cache(maxsize=1)
def os_release() -> dict[str, str]:
    out: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                out[key] = value.strip().strip('"')
    return out


def _backing_fs(path: Path) -> str:
    best, fstype = "", ""
    with contextlib.suppress(OSError), open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            mp = fields[1].replace("\\040", " ")
            if (str(path) == mp or str(path).startswith(mp.rstrip("/") + "/")) and \
                    len(mp) > len(best):
                best, fstype = mp, fields[2]
    return fstype


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _daemon_id(root: Path) -> str:
    """Stable across restarts: made once, kept under the root."""
    path = root / "engine-id"
    with contextlib.suppress(OSError):
        return path.read_text().strip()
    value = str(uuid.uuid4()).upper()
    with contextlib.suppress(OSError):
        path.write_text(value + "\n")
    return value


def _cgroup_features() -> dict[str, bool]:
    from portside.runtime import cgroups

    layout = cgroups.detect()

    def has(controller: str, *files: str) -> bool:
        top = layout.controller_dir(controller, "/")
        return top is not None and all((top / f).exists() for f in files)

    v2 = layout.mode == "v2"
    return {
        "MemoryLimit": has("memory", "memory.max" if v2 else "memory.limit_in_bytes"),
        "SwapLimit": has("memory", "memory.swap.max" if v2 else "memory.memsw.limit_in_bytes"),
        "KernelMemory": False, "KernelMemoryTCP": False,
        "CpuCfsPeriod": has("cpu", "cpu.max" if v2 else "cpu.cfs_period_us"),
        "CpuCfsQuota": has("cpu", "cpu.max" if v2 else "cpu.cfs_quota_us"),
        "CPUShares": has("cpu", "cpu.weight" if v2 else "cpu.shares"),
        "CPUSet": has("cpuset", "cpuset.cpus.effective" if v2 else "cpuset.cpus"),
        "PidsLimit": has("pids", "pids.max"),
        "OomKillDisable": not v2 and has("memory", "memory.oom_control"),
    }


def info_doc(engine: Engine) -> dict[str, Any]:
    from portside.runtime import cgroups

    containers = engine.state.all()
    running = sum(1 for c in containers if c.running and not c.state["Paused"])
    paused = sum(1 for c in containers if c.state["Paused"])
    uname = platform.uname()
    release = os_release()
    features = _cgroup_features()
    layout = cgroups.detect()
    warnings = []
    if not features["SwapLimit"]:
        warnings.append("WARNING: No swap limit support")
    forwarding = _read("/proc/sys/net/ipv4/ip_forward") == "1"
    bridge_nf = _read("/proc/sys/net/bridge/bridge-nf-call-iptables") == "1"
    runtimes = {name: {"path": shutil.which(name) or name} for name in RUNTIMES
                if shutil.which(name)}
    crun_version, crun_commit = tool_version(engine.default_runtime)
    init = next((p for p in ("/usr/bin/tini-static", "/usr/bin/catatonit", "/usr/bin/tini")
                 if os.path.exists(p)), "")
    with engine.image_lock:
        image_count = len(engine.images.list())
    return {
        "ID": _daemon_id(engine.root), "Containers": len(containers),
        "ContainersRunning": running, "ContainersPaused": paused,
        "ContainersStopped": len(containers) - running - paused, "Images": image_count,
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", _backing_fs(engine.root)],
                         ["Supports d_type", "true"], ["Using metacopy", "false"],
                         ["Native Overlay Diff", "true"], ["userxattr", "false"]],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"],
                    "Authorization": None, "Log": ["json-file"]},
        **features,
        "IPv4Forwarding": forwarding, "BridgeNfIptables": bridge_nf,
        "BridgeNfIp6tables": _read("/proc/sys/net/bridge/bridge-nf-call-ip6tables") == "1",
        "Debug": bool(os.environ.get("PORTSIDE_DEBUG")),
        "NFd": len(os.listdir("/proc/self/fd")), "NGoroutines": threading.active_count(),
        "SystemTime": datetime.now(UTC).astimezone().isoformat(),
        # conmon's k8s-file log, named as inspect names it (query.docker_log_config)
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs", "CgroupVersion": "2" if layout.mode == "v2" else "1",
        "NEventsListener": len(engine.events.subscribers),
        "KernelVersion": uname.release,
        "OperatingSystem": release.get("PRETTY_NAME") or "Linux",
        "OSVersion": release.get("VERSION_ID", ""), "OSType": "linux",
        "Architecture": uname.machine,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"AllowNondistributableArtifactsCIDRs": None,
                           "AllowNondistributableArtifactsHostnames": None,
                           "InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {},
                           "Mirrors": None},
        "NCPU": len(os.sched_getaffinity(0)),
        "MemTotal": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "GenericResources": None, "DockerRootDir": str(engine.root),
        "HttpProxy": os.environ.get("HTTP_PROXY", ""),
        "HttpsProxy": os.environ.get("HTTPS_PROXY", ""),
        "NoProxy": os.environ.get("NO_PROXY", ""),
        "Name": uname.node, "Labels": [], "ExperimentalBuild": False,
        "ServerVersion": __version__, "Runtimes": runtimes,
        "DefaultRuntime": engine.default_runtime,
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                  "ControlAvailable": False, "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": init,
        "ContainerdCommit": {"ID": ""},
        "RuncCommit": {"ID": crun_commit or crun_version},
        "InitCommit": {"ID": tool_version(os.path.basename(init))[0] if init else ""},
        "SecurityOptions": ["name=seccomp,profile=builtin"]
        + (["name=cgroupns"] if layout.mode == "v2" else []),
        "CDISpecDirs": [],
        "Warnings": warnings or None,
        **{k: v for part in engine.info_parts for k, v in part().items()},
    }


def version_doc(engine: Engine) -> dict[str, Any]:
    from portside.oci.model import host_platform

    uname = platform.uname()
    arch = host_platform().architecture
    components: list[dict[str, Any]] = [{
        "Name": "Engine", "Version": __version__,
        "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
                    "Os": "linux", "Arch": arch, "KernelVersion": uname.release,
                    "Experimental": "false", "GitCommit": "", "BuildTime": "",
                    "GoVersion": f"python{platform.python_version()}"}}]
    for tool in (engine.default_runtime, "conmon"):
        version, commit = tool_version(tool)
        if version:
            components.append({"Name": tool, "Version": version,
                               "Details": {"GitCommit": commit}})
    return {
        "Platform": {"Name": f"portside {__version__}"}, "Components": components,
        "Version": __version__, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "", "GoVersion": f"python{platform.python_version()}", "Os": "linux",
        "Arch": arch, "KernelVersion": uname.release, "BuildTime": "",
        "Experimental": False,
    }
