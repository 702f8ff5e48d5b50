"""`ServiceSpec` checks and Swarm's defaults, read in one place.

Durations in the API are nanoseconds; the readers here give seconds.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from portside.errors import InvalidArgument

Doc = dict[str, Any]

# swarmkit's isValidDNSName (with its 63-character limit): `_` is allowed, as in the
# `<stack>_<service>` names of Docker's stack deploy.
NAME = re.compile(r"^(?=.{1,63}$)[a-zA-Z0-9](?:[-_a-zA-Z0-9]*[a-zA-Z0-9])?$")
DEFAULT_RESTART_DELAY = 5.0
DEFAULT_MONITOR = 5.0


def normalise_spec(spec: Doc) -> Doc:
    """A checked copy of `spec`: a valid name, an image, one mode (replicated by default)."""
    if not isinstance(spec, dict):
        raise InvalidArgument("service spec must be a JSON object")
    spec = copy.deepcopy(spec)
    name = spec.get("Name") or ""
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidArgument(f"rpc error: code = InvalidArgument desc = name must be valid "
                              f"as a DNS name component: {name!r}")
    template = spec.get("TaskTemplate")
    if not isinstance(template, dict) or not isinstance(template.get("ContainerSpec"), dict):
        raise InvalidArgument("rpc error: code = InvalidArgument desc = ContainerSpec: "
                              "missing in service spec")
    if not template["ContainerSpec"].get("Image"):
        raise InvalidArgument("rpc error: code = InvalidArgument desc = ContainerSpec: "
                              "image reference must be provided")
    # Go's JSON decoding matches keys case-insensitively, and docker-py sends "replicated"
    mode = {k.capitalize(): v for k, v in (spec.get("Mode") or {"Replicated": {}}).items()}
    if "Replicated" in mode:
        replicas = (mode.get("Replicated") or {}).get("Replicas", 1)
        if not isinstance(replicas, int) or replicas < 0:
            raise InvalidArgument(f"invalid replicas value {replicas!r}")
        mode = {"Replicated": {"Replicas": replicas}}
    elif "Global" in mode:
        mode = {"Global": {}}
    else:
        raise InvalidArgument(f"unsupported service mode {sorted(mode)}")
    spec["Mode"] = mode
    template.setdefault("ForceUpdate", 0)
    for key in ("UpdateConfig", "RollbackConfig"):
        cfg = spec.get(key)
        if cfg is not None:
            check_update_config(key, cfg)
    return spec


def check_update_config(key: str, cfg: Doc) -> None:
    if cfg.get("Order", "stop-first") not in ("stop-first", "start-first"):
        raise InvalidArgument(f"{key}.Order must be stop-first or start-first, "
                              f"got {cfg.get('Order')!r}")
    actions = ("pause", "continue", "rollback") if key == "UpdateConfig" else ("pause",
                                                                               "continue")
    if cfg.get("FailureAction", "pause") not in actions:
        raise InvalidArgument(f"{key}.FailureAction must be one of {', '.join(actions)}, "
                              f"got {cfg.get('FailureAction')!r}")


def replicas(spec: Doc) -> int | None:
    """Replicas wanted; None in global mode."""
    if "Global" in spec["Mode"]:
        return None
    return int(spec["Mode"]["Replicated"]["Replicas"])


def seconds(ns: Any, default: float = 0.0) -> float:
    return default if ns is None else int(ns) / 1e9


@dataclass(frozen=True)
class RestartPolicy:
    condition: str  # none | on-failure | any
    delay: float
    max_attempts: int  # 0: unbounded
    window: float  # 0: attempts count over the task's whole history

    @classmethod
    def of(cls, spec: Doc) -> RestartPolicy:
        p = spec["TaskTemplate"].get("RestartPolicy") or {}
        return cls(str(p.get("Condition") or "any"),
                   seconds(p.get("Delay"), DEFAULT_RESTART_DELAY),
                   int(p.get("MaxAttempts") or 0), seconds(p.get("Window")))


@dataclass(frozen=True)
class UpdatePolicy:
    parallelism: int  # 0: all at once
    delay: float
    order: str
    monitor: float
    max_failure_ratio: float
    failure_action: str

    @classmethod
    def of(cls, spec: Doc, rollback: bool = False) -> UpdatePolicy:
        c = spec.get("RollbackConfig" if rollback else "UpdateConfig") or {}
        return cls(int(c.get("Parallelism", 1)), seconds(c.get("Delay")),
                   str(c.get("Order") or "stop-first"),
                   seconds(c.get("Monitor"), DEFAULT_MONITOR),
                   float(c.get("MaxFailureRatio") or 0.0),
                   str(c.get("FailureAction") or "pause"))
