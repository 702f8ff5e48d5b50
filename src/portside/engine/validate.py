"""Type checks of a Docker create body, so bad input is a 400 naming the field, never a 500."""

from __future__ import annotations

from typing import Any

from portside.errors import InvalidArgument

_STR = ("Image", "User", "WorkingDir", "StopSignal", "Hostname", "Domainname")
_BOOL = ("Tty", "OpenStdin", "StdinOnce", "AttachStdin", "AttachStdout", "AttachStderr",
         "NetworkDisabled", "ArgsEscaped")
MIN_MEMORY = 6 * 1024 * 1024  # Docker's "Minimum memory limit allowed is 6MB" (create, update)

_HC_INT = ("Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuQuota", "CpuPeriod",
           "CpuShares", "PidsLimit", "ShmSize")
_HC_BOOL = ("AutoRemove", "Init", "ReadonlyRootfs", "Privileged", "PublishAllPorts")
_HC_STRLIST = ("Binds", "CapAdd", "CapDrop", "SecurityOpt", "GroupAdd", "Dns", "DnsSearch",
               "DnsOptions", "ExtraHosts")
_HC_STRMAP = ("Tmpfs", "Sysctls")
_RESTART = ("", "no", "always", "unless-stopped", "on-failure")


def _bad(field: str, what: str) -> InvalidArgument:
    return InvalidArgument(f"invalid {field}: {what}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _str_list(v: Any, field: str, allow_str: bool = False) -> None:
    if v is None or (allow_str and isinstance(v, str)):
        return
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise _bad(field, "expected a list of strings")


def _str_map(v: Any, field: str) -> None:
    if v is None:
        return
    if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
        raise _bad(field, "expected an object of strings")


def check_create(body: dict[str, Any]) -> None:
    for key in _STR:
        if body.get(key) is not None and not isinstance(body[key], str):
            raise _bad(key, "expected a string")
    for key in _BOOL:
        if body.get(key) is not None and not isinstance(body[key], bool):
            raise _bad(key, "expected a boolean")
    _str_list(body.get("Cmd"), "Cmd", allow_str=True)
    _str_list(body.get("Entrypoint"), "Entrypoint", allow_str=True)
    _str_list(body.get("Env"), "Env")
    _str_map(body.get("Labels"), "Labels")
    for key in ("Volumes", "ExposedPorts"):
        if body.get(key) is not None and not isinstance(body[key], dict):
            raise _bad(key, "expected an object")
    if body.get("StopTimeout") is not None and not _is_int(body["StopTimeout"]):
        raise _bad("StopTimeout", "expected an integer")
    check_healthcheck(body.get("Healthcheck"))
    hc = body.get("HostConfig")
    if hc is None:
        return
    if not isinstance(hc, dict):
        raise _bad("HostConfig", "expected an object")
    check_host_config(hc)
    if str(hc.get("NetworkMode") or "").startswith("container:") and body.get("Hostname"):
        # the other container's UTS name and /etc/hostname are shared (Docker's message)
        raise InvalidArgument("conflicting options: hostname and the network mode")


def check_healthcheck(h: Any) -> None:
    if h is None:
        return
    if not isinstance(h, dict):
        raise _bad("Healthcheck", "expected an object")
    _str_list(h.get("Test"), "Healthcheck.Test")
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"):
        v = h.get(key)
        if v is not None and (not _is_int(v) or v < 0):
            raise _bad(f"Healthcheck.{key}", "expected a non-negative integer")


def check_host_config(hc: dict[str, Any]) -> None:
    for key in _HC_INT:
        v = hc.get(key)
        if v is not None and not _is_int(v):
            raise _bad(f"HostConfig.{key}", "expected an integer")
    for key in ("Memory", "NanoCpus", "CpuQuota", "CpuPeriod", "CpuShares", "ShmSize"):
        if (hc.get(key) or 0) < 0:
            raise _bad(f"HostConfig.{key}", "must not be negative")
    if 0 < (hc.get("Memory") or 0) < MIN_MEMORY:
        # Docker's own check (daemon_unix.go, linuxMinMemory): below it a container
        # cannot even start its runtime
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if hc.get("MemorySwap") is not None and hc["MemorySwap"] < -1:
        raise _bad("HostConfig.MemorySwap", "must be -1 or a size")
    for key in _HC_BOOL:
        if hc.get(key) is not None and not isinstance(hc[key], bool):
            raise _bad(f"HostConfig.{key}", "expected a boolean")
    for key in _HC_STRLIST:
        _str_list(hc.get(key), f"HostConfig.{key}")
    for key in _HC_STRMAP:
        _str_map(hc.get(key), f"HostConfig.{key}")
    for key in ("NetworkMode", "Runtime"):
        if hc.get(key) is not None and not isinstance(hc[key], str):
            raise _bad(f"HostConfig.{key}", "expected a string")
    if hc.get("Runtime") not in (None, "", "crun", "runc"):
        raise _bad("HostConfig.Runtime", f"unknown runtime {hc['Runtime']!r} (crun or runc)")
    mounts = hc.get("Mounts")
    if mounts is not None and (not isinstance(mounts, list)
                               or not all(isinstance(m, dict) for m in mounts)):
        raise _bad("HostConfig.Mounts", "expected a list of objects")
    policy = hc.get("RestartPolicy")
    if policy is not None:
        if not isinstance(policy, dict):
            raise _bad("HostConfig.RestartPolicy", "expected an object")
        if policy.get("Name") not in (None, *_RESTART):
            raise _bad("HostConfig.RestartPolicy", f"unknown policy {policy.get('Name')!r}")
        count = policy.get("MaximumRetryCount")
        if count is not None and (not _is_int(count) or count < 0):
            raise _bad("HostConfig.RestartPolicy.MaximumRetryCount", "expected a count")
    log = hc.get("LogConfig")
    if log is not None:
        if not isinstance(log, dict):
            raise _bad("HostConfig.LogConfig", "expected an object")
        _str_map(log.get("Config"), "HostConfig.LogConfig.Config")
        if log.get("Config"):
            from portside.engine.options import parse_log_opts

            parse_log_opts([f"{k}={v}" for k, v in log["Config"].items()])
    if hc.get("PortBindings") is not None and not isinstance(hc["PortBindings"], dict):
        raise _bad("HostConfig.PortBindings", "expected an object")
