"""The runtime's data model: what the engine asks for (ContainerSpec) and what it gets back.

These are plain dataclasses so the engine can build them from Docker API requests and
store them as JSON; the runtime turns a ContainerSpec into an OCI bundle (spec.py) and
drives conmon + crun/runc with it (runtime.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Status = Literal["created", "running", "paused", "stopped"]


@dataclass
class Mount:
    """One mount as the engine resolved it: `source` is a host path (or "tmpfs")."""

    destination: str
    type: str = "bind"  # "bind" | "tmpfs" | "volume" (a bind of the volume's host dir)
    source: str = ""
    options: list[str] = field(default_factory=list)


@dataclass
class Resources:
    """cgroup limits; None means unlimited / runtime default (Docker's semantics)."""

    memory: int | None = None  # bytes
    memory_swap: int | None = None  # bytes of memory+swap; -1 unlimited swap
    cpu_quota: int | None = None  # microseconds per period
    cpu_period: int | None = None  # microseconds
    cpu_shares: int | None = None
    pids_limit: int | None = None  # <=0 or None: unlimited
    cpuset_cpus: str | None = None  # "0-2,4"
    cpuset_mems: str | None = None
    memory_reservation: int | None = None  # soft limit, bytes
    oom_kill_disable: bool = False
    blkio_weight: int | None = None  # 10..1000


@dataclass
class Device:
    """A host device made available in the container (`--device`)."""

    path_on_host: str
    path_in_container: str = ""  # default: the host path
    permissions: str = "rwm"


@dataclass
class ContainerSpec:
    """Everything needed to create one container, already resolved by the engine.

    `lowerdirs` are image layer snapshot dirs, top-most first, mounted as an overlay with
    a per-container upper dir; with an empty list, `rootfs_path` names a plain directory
    used as the root as is (writes go into it; no upper dir, nothing for `diff`).
    """

    id: str
    name: str = ""
    lowerdirs: list[Path] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    cwd: str = "/"
    user: str = ""  # "name|uid[:group|gid]", resolved against the rootfs
    group_add: list[str] = field(default_factory=list)
    hostname: str = ""
    tty: bool = False
    open_stdin: bool = False
    # Docker's StdinOnce: the container's stdin closes when the first attached client
    # closes its side (`run -i` piping into the container); otherwise it stays open.
    stdin_once: bool = False
    mounts: list[Mount] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)
    read_only: bool = False
    resources: Resources = field(default_factory=Resources)
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    privileged: bool = False
    no_new_privileges: bool = False
    seccomp: str = "default"  # "default" | "unconfined" | path to a JSON profile
    network_namespace: str | None = None  # None: new netns (lo only); "host"; or a path
    init: bool = False
    stop_signal: str = "SIGTERM"
    labels: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None  # default: <container dir>/ctr.log
    log_max_size: int | None = None  # bytes; rotated at this size (logkeeper.py)
    log_max_file: int = 1  # rotated files kept besides the current one is log_max_file - 1
    runtime: str = "crun"  # "crun" | "runc"
    rootfs_path: Path | None = None
    # Where the writable layer lives (`diff/` and `work/` inside). None: in the runtime's
    # container dir, removed by delete. Given: the caller's, kept by delete, so a
    # container's changes survive stop/start (a new runtime container) as in Docker.
    rw_dir: Path | None = None
    sysctls: dict[str, str] = field(default_factory=dict)
    shm_size: int | None = None  # bytes; default 64 MiB like Docker
    ulimits: dict[str, tuple[int, int]] = field(default_factory=dict)  # "nofile": (soft, hard)
    masked_paths: list[str] | None = None  # None: Docker's defaults (none when privileged)
    readonly_paths: list[str] | None = None


@dataclass
class ContainerState:
    status: Status
    pid: int = 0
    exit_code: int | None = None
    oom_killed: bool = False
    started_at: float | None = None  # unix time
    finished_at: float | None = None
