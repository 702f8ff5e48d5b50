"""Changing a container after create: `docker update` (resources, restart policy) and
`docker rename`.

`update` merges Docker's update body into the container's HostConfig (so inspect shows
it and the next start applies it), then, when the container runs, changes its cgroup
limits live through the runtime (`crun|runc update --resources`). `rename` changes the
record's name (the unique index is the name check) and the name DNS answers on its
networks.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from portside.engine.validate import MIN_MEMORY
from portside.errors import InvalidArgument

if TYPE_CHECKING:
    from portside.engine.containers import Engine

UPDATABLE_INT = ("Memory", "MemorySwap", "MemoryReservation", "KernelMemory", "CpuShares",
                 "NanoCpus", "CpuQuota", "CpuPeriod", "CpuRealtimePeriod", "CpuRealtimeRuntime",
                 "PidsLimit", "BlkioWeight")
UPDATABLE_STR = ("CpusetCpus", "CpusetMems")
RESTART_NAMES = ("", "no", "always", "unless-stopped", "on-failure")


def merged_host_config(current: dict[str, Any], body: dict[str, Any]) -> tuple[
        dict[str, Any], list[str]]:
    """The HostConfig after an update body, with Docker's checks; and its warnings."""
    from portside.runtime import cgroups

    hc = dict(current)
    warnings: list[str] = []
    for key in UPDATABLE_INT:
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidArgument(f"invalid {key}: expected an integer")
        if value == 0 and key not in ("PidsLimit",):
            continue  # Docker: 0 means "not changed"
        hc[key] = value
    for key in UPDATABLE_STR:
        value = body.get(key)
        if value:
            if not isinstance(value, str):
                raise InvalidArgument(f"invalid {key}: expected a string")
            hc[key] = value
    memory = int(hc.get("Memory") or 0)
    if body.get("Memory") and memory < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    swap = int(hc.get("MemorySwap") or 0)
    if body.get("Memory") and not body.get("MemorySwap") and swap > 0 and memory > swap:
        raise InvalidArgument("Memory limit should be smaller than already set memoryswap"
                              " limit, update the memoryswap at the same time")
    if memory and swap > 0 and swap < memory:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit,"
                              " see usage")
    if int(hc.get("MemoryReservation") or 0) and memory and \
            int(hc["MemoryReservation"]) > memory:
        raise InvalidArgument("Minimum memory limit can not be less than memory reservation"
                              " limit, see usage")
    if body.get("NanoCpus") and (body.get("CpuQuota") or body.get("CpuPeriod")):
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if body.get("NanoCpus"):
        hc["CpuQuota"], hc["CpuPeriod"] = 0, 0
    elif body.get("CpuQuota") or body.get("CpuPeriod"):
        hc["NanoCpus"] = 0
    weight = int(hc.get("BlkioWeight") or 0)
    if body.get("BlkioWeight"):
        if not 10 <= weight <= 1000:
            raise InvalidArgument("Range of blkio weight is from 10 to 1000")
        if not cgroups.supports_blkio_weight(cgroups.detect()):
            warnings.append("Your kernel does not support Block I/O weight or the cgroup is"
                            " not mounted. Weight discarded.")
            hc["BlkioWeight"] = 0
    policy = body.get("RestartPolicy")
    if policy is not None and not isinstance(policy, dict):
        raise InvalidArgument("invalid RestartPolicy: expected an object")
    if policy and policy.get("Name"):  # the docker client sends an empty one every time
        name = policy["Name"]
        if name not in RESTART_NAMES:
            raise InvalidArgument(f"invalid restart policy '{name}'")
        retries = int(policy.get("MaximumRetryCount") or 0)
        if retries and name != "on-failure":
            raise InvalidArgument(f"maximum retry count cannot be used with restart policy"
                                  f" '{name}'")
        if current.get("AutoRemove") and name not in ("", "no"):
            raise InvalidArgument("Restart policy cannot be updated because AutoRemove is"
                                  " enabled for the container")
        hc["RestartPolicy"] = {"Name": name, "MaximumRetryCount": retries}
    return hc, warnings


async def update(engine: Engine, ref: str, body: dict[str, Any]) -> list[str]:
    """POST /containers/{id}/update: Docker's response `Warnings`."""
    from portside.engine import spec as spec_mod

    c = engine.get(ref)
    async with engine.lock(c.id):
        c = engine.get(c.id)
        hc, warnings = merged_host_config(c.host_config, body)
        resources = spec_mod.resources_of(hc)
        if body.get("PidsLimit") is not None and int(body["PidsLimit"]) <= 0:
            resources.pids_limit = -1  # Docker: 0 or -1 lifts the limit
        if c.running:
            try:
                await asyncio.to_thread(engine.runtime.update, c.id, resources)
            except InvalidArgument:
                raise
            except Exception as exc:  # noqa: BLE001 - the runtime's refusal, as Docker words it
                raise InvalidArgument(f"Cannot update container {c.id}: {exc}") from None
        c.host_config = hc
        engine.state.save(c)
    engine.event(c, "update")
    return warnings


def rename(engine: Engine, ref: str, new_name: str) -> None:
    """POST /containers/{id}/rename?name=: 409 when the name is taken."""
    from portside.engine.containers import _NAME

    c = engine.get(ref)
    name = new_name.removeprefix("/")
    if not name:
        raise InvalidArgument("Neither old nor new names may be empty")
    if not _NAME.match(name):
        raise InvalidArgument(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-]"
                              " are allowed")
    if name == c.name:
        raise InvalidArgument("Renaming a container with the same name as its current name")
    old = c.name
    engine.state.rename(c, name)  # one transaction: NameInUse when the name is taken
    from portside.engine.networking import uses_bridge

    if uses_bridge(c) and (engine.root / "network").exists():
        engine.networks.manager.rename(c.id, name)
    engine.event(c, "rename", oldName=f"/{old}")
