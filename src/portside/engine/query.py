"""What `GET /containers/json` and `inspect` return: Docker's shapes from a Container record.

Also the list filters (`status`, `name`, `label`, `id`, `ancestor`, `exited`, `health`)
and Docker's human STATUS column ("Up 3 seconds (healthy)", "Exited (0) 2 minutes ago").
"""

from __future__ import annotations

import re
import shlex
import time
from pathlib import Path
from typing import Any

from portside.engine.state import Container, parse_rfc3339, unix_created
from portside.errors import InvalidArgument
from portside.runtime.spec import DEFAULT_SHM_SIZE


def human_duration(seconds: float) -> str:
    """Docker's units.HumanDuration."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    m = s // 60
    if m == 1:
        return "About a minute"
    if m < 60:
        return f"{m} minutes"
    h = round(s / 3600)
    if h == 1:
        return "About an hour"
    if h < 48:
        return f"{h} hours"
    if h < 24 * 7 * 2:
        return f"{h // 24} days"
    if h < 24 * 30 * 2:
        return f"{h // 24 // 7} weeks"
    if h < 24 * 365 * 2:
        return f"{h // 24 // 30} months"
    return f"{h // 24 // 365} years"


def status_text(c: Container, now: float | None = None) -> str:
    now = now or time.time()
    st = c.state
    if st["Restarting"]:
        ago = human_duration(now - parse_rfc3339(st["FinishedAt"]))
        return f"Restarting ({st['ExitCode']}) {ago} ago"
    if st["Running"]:
        text = "Up " + human_duration(now - parse_rfc3339(st["StartedAt"]))
        if st["Paused"]:
            text += " (Paused)"
        health = (st.get("Health") or {}).get("Status")
        if health == "starting":
            text += " (health: starting)"
        elif health:
            text += f" ({health})"
        return text
    if st["Status"] == "created":
        return "Created"
    if st["Status"] == "removing":
        return "Removal In Progress"
    if st["Status"] == "dead":
        return "Dead"
    finished = parse_rfc3339(st["FinishedAt"])
    if not finished:
        return "Created"
    return f"Exited ({st['ExitCode']}) {human_duration(now - finished)} ago"


def command_text(c: Container) -> str:
    args = list(c.config.get("Entrypoint") or []) + list(c.config.get("Cmd") or [])
    return " ".join(shlex.quote(a) if " " in a else a for a in args)


def summary(c: Container, ports: list[dict[str, Any]] | None = None,
            networks: dict[str, Any] | None = None) -> dict[str, Any]:
    """One entry of the container list; `networks` are its endpoints while it runs (as in
    inspect), else the networks it will be on, by name."""
    network = c.host_config.get("NetworkMode") or "default"
    return {
        "Id": c.id, "Names": ["/" + c.name], "Image": c.image, "ImageID": c.image_id,
        "Command": command_text(c), "Created": unix_created(c), "Ports": ports or [],
        "Labels": c.config.get("Labels") or {}, "State": c.state["Status"],
        "Status": status_text(c), "HostConfig": {"NetworkMode": network},
        "NetworkSettings": {"Networks": networks or {n: {} for n in sorted(networks_of(c))}},
        "Mounts": c.mounts,
    }


# What inspect shows of a HostConfig field the client left out: Docker answers every
# field, its zero value when unset, so clients read `["Privileged"]` or `["Memory"]` without
# a KeyError. Only values that are what portside does by default are given here.
HOST_CONFIG_DEFAULTS: dict[str, Any] = {
    "Binds": None, "ContainerIDFile": "", "NetworkMode": "default", "PortBindings": {},
    "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "AutoRemove": False,
    "VolumeDriver": "", "VolumesFrom": None, "CapAdd": None, "CapDrop": None, "Dns": [],
    "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None, "GroupAdd": None,
    "IpcMode": "private", "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "",
    "Privileged": False, "PublishAllPorts": False, "ReadonlyRootfs": False,
    "SecurityOpt": None, "UTSMode": "", "UsernsMode": "", "ShmSize": DEFAULT_SHM_SIZE,
    "ConsoleSize": [0, 0], "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0,
    "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [],
    "BlkioDeviceReadBps": None, "BlkioDeviceWriteBps": None, "BlkioDeviceReadIOps": None,
    "BlkioDeviceWriteIOps": None, "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0,
    "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "", "Devices": [],
    "DeviceCgroupRules": None, "DeviceRequests": None, "MemoryReservation": 0,
    "MemorySwap": 0, "MemorySwappiness": None, "OomKillDisable": False, "PidsLimit": None,
    "Ulimits": None, "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0,
    "IOMaximumBandwidth": 0,
}


def docker_log_config(asked: dict[str, Any] | None) -> dict[str, Any]:
    """The log driver as Docker names it. conmon's k8s-file log (the default, also when
    the client sent an empty Type) is the one `/logs` reads, so it is shown as Docker's
    readable default, json-file: clients such as docker-py read logs only for json-file
    or journald (podman's compat API does the same)."""
    doc = dict(asked or {})
    if doc.get("Type") in (None, "", "k8s-file"):
        doc["Type"] = "json-file"
    doc["Config"] = doc.get("Config") or {}
    return doc


def inspect(c: Container, log_path: str,
            network_settings: dict[str, Any] | None = None) -> dict[str, Any]:
    args = list(c.config.get("Entrypoint") or []) + list(c.config.get("Cmd") or [])
    host_config = {**HOST_CONFIG_DEFAULTS, "Runtime": c.runtime,
                   **{k: v for k, v in c.host_config.items()
                      if not k.startswith("_") and v is not None}}
    host_config["LogConfig"] = docker_log_config(c.host_config.get("LogConfig"))
    return {
        "Id": c.id, "Created": c.created, "Path": args[0] if args else "",
        "Args": args[1:], "State": c.state, "Image": c.image_id,
        "ResolvConfPath": str(Path(log_path).parent / "resolv.conf"),
        "HostnamePath": str(Path(log_path).parent / "hostname"),
        "HostsPath": str(Path(log_path).parent / "hosts"), "LogPath": log_path,
        "Name": "/" + c.name, "RestartCount": c.restart_count, "Driver": "overlay",
        "Platform": "linux", "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "",
        "ExecIDs": None, "HostConfig": host_config, "Mounts": c.mounts,
        "Config": {**c.config, "Hostname": c.config.get("Hostname") or c.id[:12]},
        "NetworkSettings": network_settings or {"Networks": {}, "Ports": {}, "IPAddress": "",
                                                "Gateway": "", "MacAddress": "",
                                                "SandboxKey": ""},
        "GraphDriver": {"Name": "overlay", "Data": None},
    }


def _name_matches(pattern: str, name: str) -> bool:
    """Docker's `name` filter: a regular expression searched in the name with its leading
    slash, so `^/web$` is the exact match; a pattern that does not compile matches nothing."""
    try:
        return re.search(pattern, "/" + name) is not None
    except re.error:
        return False


# The filters `GET /containers/json` accepts (Docker's acceptedPsFilterTags); any other
# key is a 400, as in Docker.
LIST_FILTERS = frozenset({"ancestor", "before", "expose", "exited", "health", "id",
                          "isolation", "is-task", "label", "name", "network", "publish",
                          "since", "status", "volume"})


def networks_of(c: Container) -> set[str]:
    """The names of the networks the container is (or at its start will be) on."""
    from portside.engine.networking import NETWORKING_KEY

    mode = c.host_config.get("NetworkMode") or "default"
    kept = (c.host_config.get(NETWORKING_KEY) or {}).get("EndpointsConfig") or {}
    names = {n for n in kept if n != "default"}
    if mode not in ("none", "host") and not mode.startswith("container:"):
        names.add("bridge" if mode == "default" else mode)
    return names


def _mounts_volume(c: Container, ref: str) -> bool:
    """Docker's `volume` filter: a volume's name (a bind's source) or a mount point."""
    return any(ref in (m.get("Name") or m.get("Source"), m.get("Destination"))
               for m in c.mounts)


def _ports_filter(values: list[str]) -> set[str]:
    """`80`, `80/udp`, `8000-8002/tcp` -> {"80/tcp", ...} (the default protocol is tcp)."""
    out = set()
    for v in values:
        spec, _, proto = v.partition("/")
        low, _, high = spec.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise InvalidArgument(f"invalid port filter {v!r}")
        out |= {f"{p}/{proto or 'tcp'}" for p in range(int(low), int(high or low) + 1)}
    return out


def matches(c: Container, filters: dict[str, list[str]]) -> bool:
    """Docker's container list filters; values of one key are OR-ed, keys AND-ed."""
    for key, values in filters.items():
        if not values:
            continue
        if key == "status" and c.state["Status"] not in values:
            return False
        if key == "name" and not any(_name_matches(v, c.name) for v in values):
            return False
        if key == "id" and not any(c.id.startswith(v) for v in values):
            return False
        if key == "ancestor" and not any(v in (c.image, c.image_id) or c.image_id.startswith(
                "sha256:" + v) for v in values):
            return False
        if key == "exited" and (c.running or str(c.state["ExitCode"]) not in values
                                or c.state["Status"] != "exited"):
            return False
        if key == "health" and (c.state.get("Health") or {}).get("Status", "none") not in values:
            return False
        if key == "volume" and not any(_mounts_volume(c, v) for v in values):
            return False
        if key == "network" and not networks_of(c) & set(values):
            return False
        if key == "expose" and not _ports_filter(values) & set(
                c.config.get("ExposedPorts") or {}):
            return False
        if key == "publish" and not _ports_filter(values) & {
                p for p, b in (c.host_config.get("PortBindings") or {}).items() if b}:
            return False
        if key == "is-task" and "true" in values:  # no swarm tasks here
            return False
        if key == "isolation" and "default" not in values:
            return False
        if key == "label":
            labels = c.config.get("Labels") or {}
            for v in values:
                k, sep, val = v.partition("=")
                if k not in labels or (sep and labels[k] != val):
                    return False
        if key == "until":
            from portside.engine.options import parse_time_or_duration

            if not all(unix_created(c) < parse_time_or_duration(v, time.time()) for v in values):
                return False
    return True


def normalise_filters(raw: str | None) -> dict[str, list[str]]:
    """The `filters` query parameter: {"k": ["v"]} or the legacy {"k": {"v": true}}."""
    import json

    if not raw:
        return {}
    doc = json.loads(raw)
    out: dict[str, list[str]] = {}
    for key, value in doc.items():
        out[key] = list(value.keys()) if isinstance(value, dict) else list(value)
    return out
