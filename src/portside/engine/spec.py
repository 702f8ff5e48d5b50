"""Docker's container semantics, pure: merging a create request with the image's config.

What the daemon stores as a container's `Config` (and `inspect` shows) is the request
merged with the image's defaults, as Docker does it: ENTRYPOINT/CMD combination, Env
merge (image first, later wins), WorkingDir, User, labels, StopSignal and HEALTHCHECK.
`process_args` and `cpu_quota` finish the translation for the runtime.
"""

from __future__ import annotations

from typing import Any

from portside.errors import InvalidArgument

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CPU_PERIOD = 100_000  # CFS period (µs) Docker uses to express NanoCpus


class NoCommand(InvalidArgument):
    def __init__(self) -> None:
        super().__init__("no command specified")


def merge_env(*lists: list[str] | None) -> list[str]:
    """Later lists win by key; the order of first appearance is kept."""
    merged: dict[str, str] = {}
    for env in lists:
        for item in env or []:
            key = item.partition("=")[0]
            merged[key] = item
    return list(merged.values())


def merge_healthcheck(image: dict[str, Any] | None,
                      request: dict[str, Any] | None) -> dict[str, Any] | None:
    """Docker's rule: fields set in the request win, the image fills the rest."""
    if not request:
        return dict(image) if image else None
    if request.get("Test") and request["Test"][0] == "NONE":
        return {"Test": ["NONE"]}
    merged = dict(image or {})
    for key, value in request.items():
        if value:
            merged[key] = value
    return merged or None


def merge_config(request: dict[str, Any], image_config: dict[str, Any]) -> dict[str, Any]:
    """The container's Config: a Docker create body merged with the image's `config`."""
    img = image_config or {}
    cfg: dict[str, Any] = {
        "Hostname": request.get("Hostname") or "",
        "Domainname": request.get("Domainname") or "",
        "User": request.get("User") or img.get("User") or "",
        "AttachStdin": bool(request.get("AttachStdin")),
        "AttachStdout": bool(request.get("AttachStdout")),
        "AttachStderr": bool(request.get("AttachStderr")),
        "Tty": bool(request.get("Tty")),
        "OpenStdin": bool(request.get("OpenStdin")),
        "StdinOnce": bool(request.get("StdinOnce")),
        "Env": merge_env(img.get("Env") or [DEFAULT_PATH], request.get("Env")),
        "Image": request.get("Image") or "",
        "WorkingDir": request.get("WorkingDir") or img.get("WorkingDir") or "",
        "Labels": {**(img.get("Labels") or {}), **(request.get("Labels") or {})},
        "StopSignal": request.get("StopSignal") or img.get("StopSignal") or "SIGTERM",
        "Volumes": {**(img.get("Volumes") or {}), **(request.get("Volumes") or {})} or None,
        "ExposedPorts": {**(img.get("ExposedPorts") or {}),
                         **(request.get("ExposedPorts") or {})} or None,
    }
    if request.get("StopTimeout") is not None:
        cfg["StopTimeout"] = int(request["StopTimeout"])
    entrypoint = request.get("Entrypoint")
    cmd = request.get("Cmd")
    if isinstance(entrypoint, str):
        entrypoint = [entrypoint]
    if isinstance(cmd, str):
        cmd = [cmd]
    if entrypoint is None:
        # No entrypoint asked: the image's, and its CMD unless the request has one.
        cfg["Entrypoint"] = img.get("Entrypoint") or None
        cfg["Cmd"] = cmd if cmd else (img.get("Cmd") or None)
    else:
        # An entrypoint given (even `--entrypoint ""`) drops the image's CMD.
        cfg["Entrypoint"] = None if entrypoint in ([""], []) else list(entrypoint)
        cfg["Cmd"] = cmd or None
    cfg["Healthcheck"] = merge_healthcheck(img.get("Healthcheck"), request.get("Healthcheck"))
    if cfg["Healthcheck"] is None:
        del cfg["Healthcheck"]
    return cfg


def process_args(config: dict[str, Any]) -> list[str]:
    """argv of the container's process: Entrypoint + Cmd."""
    args = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
    if not args:
        raise NoCommand()
    return args


def cpu_quota(host_config: dict[str, Any]) -> tuple[int, int]:
    """(quota, period) in µs from NanoCpus, or CpuQuota/CpuPeriod; (0, 0) when unlimited."""
    nano = int(host_config.get("NanoCpus") or 0)
    if nano:
        if host_config.get("CpuQuota") or host_config.get("CpuPeriod"):
            raise InvalidArgument("conflicting options: NanoCpus and CpuQuota/CpuPeriod"
                                  " cannot both be set")
        return nano * CPU_PERIOD // 10**9, CPU_PERIOD
    quota = int(host_config.get("CpuQuota") or 0)
    period = int(host_config.get("CpuPeriod") or 0)
    return (quota, period or CPU_PERIOD) if quota else (0, 0)


def default_hostname(container_id: str, config: dict[str, Any]) -> str:
    return str(config.get("Hostname") or container_id[:12])


def resources_of(hc: dict[str, Any]) -> Any:
    """The runtime's Resources for a HostConfig's limits (at start, and for `update`)."""
    from portside.runtime import Resources, cgroups

    quota, period = cpu_quota(hc)
    pids = hc.get("PidsLimit")

    def positive(key: str) -> int | None:
        return int(hc[key]) if hc.get(key) and int(hc[key]) > 0 else None

    return Resources(
        memory=positive("Memory"),
        memory_swap=int(hc["MemorySwap"]) if hc.get("MemorySwap") else None,
        cpu_quota=quota or None, cpu_period=period or None,
        cpu_shares=positive("CpuShares"),
        pids_limit=int(pids) if pids and int(pids) > 0 else None,
        cpuset_cpus=hc.get("CpusetCpus") or None, cpuset_mems=hc.get("CpusetMems") or None,
        memory_reservation=positive("MemoryReservation"),
        blkio_weight=positive("BlkioWeight")
        if cgroups.supports_blkio_weight(cgroups.detect()) else None)


def runtime_spec(container_id: str, name: str, config: dict[str, Any],
                 host_config: dict[str, Any], lowerdirs: list[Any], mounts: list[Any],
                 log_path: Any, default_runtime: str = "crun",
                 network_namespace: str | None = None) -> Any:
    """The runtime's ContainerSpec for a container's Config and HostConfig."""
    from portside.engine.options import parse_bytes
    from portside.runtime import ContainerSpec

    hc = host_config
    resources = resources_of(hc)
    security = hc.get("SecurityOpt") or []
    seccomp = "default"
    for opt in security:
        key, _, value = opt.replace("=", ":", 1).partition(":")
        if key == "seccomp" and value:
            seccomp = value
    network = hc.get("NetworkMode") or "default"
    if network == "host":
        network_namespace = "host"
    log_opts = (hc.get("LogConfig") or {}).get("Config") or {}
    return ContainerSpec(
        id=container_id, name=name, lowerdirs=list(lowerdirs), args=process_args(config),
        env=list(config.get("Env") or []), cwd=config.get("WorkingDir") or "/",
        user=config.get("User") or "", group_add=list(hc.get("GroupAdd") or []),
        hostname=default_hostname(container_id, config), tty=bool(config.get("Tty")),
        open_stdin=bool(config.get("OpenStdin")),
        stdin_once=bool(config.get("OpenStdin") and config.get("StdinOnce")),
        mounts=list(mounts),
        read_only=bool(hc.get("ReadonlyRootfs")), resources=resources,
        cap_add=list(hc.get("CapAdd") or []), cap_drop=list(hc.get("CapDrop") or []),
        privileged=bool(hc.get("Privileged")),
        no_new_privileges=any(o.split(":")[0].split("=")[0] == "no-new-privileges"
                              and not o.endswith(("false", "=0")) for o in security),
        seccomp=seccomp, network_namespace=network_namespace,
        init=bool(hc.get("Init")), stop_signal=config.get("StopSignal") or "SIGTERM",
        labels=dict(config.get("Labels") or {}), log_path=log_path,
        log_max_size=parse_bytes(log_opts["max-size"]) if log_opts.get("max-size") else None,
        log_max_file=int(log_opts.get("max-file") or 1),
        runtime=hc.get("Runtime") or default_runtime,
        sysctls=dict(hc.get("Sysctls") or {}),
        shm_size=int(hc["ShmSize"]) if hc.get("ShmSize") else None)
