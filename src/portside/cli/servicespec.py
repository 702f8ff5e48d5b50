"""The flags of `service create` and `service update` -> a Docker `ServiceSpec` document.

Pure functions (unit-tested without a daemon), so a mistake in a flag is a one-line error
before anything is sent. Docker's flag names and defaults: parallelism 1, failure action
pause, order stop-first; durations are Go durations, sent as nanoseconds as the API wants.
`apply` changes only what a flag names, so `update` keeps the rest of the spec.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from portside.compose import syntax
from portside.engine.options import parse_bytes, parse_cpus, parse_duration, parse_mount
from portside.errors import InvalidArgument
from portside.numbers import is_digits

FAILURE_ACTIONS = ("pause", "continue", "rollback")
ORDERS = ("stop-first", "start-first")
CONDITIONS = ("none", "on-failure", "any")


def replicas(text: str, where: str = "--replicas") -> int:
    if not is_digits(str(text)):
        raise InvalidArgument(f"invalid {where} {text!r}: expected a whole number")
    return int(text)


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise InvalidArgument(f"invalid --update-max-failure-ratio {text!r}: expected a number"
                              " from 0 to 1")
    return value


def _choice(choices: tuple[str, ...], flag: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if text not in choices:
            raise InvalidArgument(f"invalid {flag} {text!r}: expected one of "
                                  + ", ".join(choices))
        return text
    return check


def _pairs(items: tuple[str, ...] | list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid {flag} {item!r}: use KEY=VALUE")
        out[key] = value
    return out


def parse_publish(text: str) -> list[dict[str, Any]]:
    """`-p 8080:80[/udp]` or `-p published=8080,target=80,protocol=tcp,mode=host` ->
    EndpointSpec.Ports entries."""
    if "=" in text:
        fields = _pairs(text.split(","), "--publish")
        unknown = set(fields) - {"published", "target", "protocol", "mode"}
        if unknown or "target" not in fields:
            raise InvalidArgument(f"invalid --publish {text!r}: " + (
                f"unknown field {sorted(unknown)[0]!r}" if unknown else "target is required"))
        ports: list[dict[str, Any]] = [{"target": fields["target"], "published": fields.get("published") or None,
                  "protocol": fields.get("protocol", "tcp"), "mode": fields.get("mode", "ingress")}]
        for key in ("target", "published"):
            if ports[0][key] is not None and not (
                    is_digits(str(ports[0][key])) and 0 < int(ports[0][key]) < 65536):
                raise InvalidArgument(f"invalid --publish {text!r}: {key} is not a port")
        if ports[0]["protocol"] not in syntax.PROTOCOLS or ports[0]["mode"] not in (
                "ingress", "host"):
            raise InvalidArgument(f"invalid --publish {text!r}: bad protocol or mode")
    else:
        try:
            ports = syntax.parse_port(text)
        except ValueError as exc:
            raise InvalidArgument(f"invalid --publish: {exc}") from None
        if any(p["host_ip"] for p in ports):
            raise InvalidArgument(f"invalid --publish {text!r}: a service publishes on every"
                                  " address; drop the IP")
    out: list[dict[str, Any]] = []
    for p in ports:
        entry: dict[str, Any] = {"Protocol": p["protocol"], "TargetPort": int(str(p["target"]))}
        if p["published"]:
            entry["PublishedPort"] = int(str(p["published"]))
        entry["PublishMode"] = p["mode"]
        out.append(entry)
    return out


def parse_service_mount(text: str) -> dict[str, Any]:
    mount: dict[str, Any] = parse_mount(text).to_api()
    return mount


def parse_file_ref(text: str, flag: str) -> dict[str, Any]:
    """`--secret name` or `--secret source=name,target=file,uid=0,gid=0,mode=0444`."""
    fields = _pairs(text.split(","), flag) if "=" in text else {"source": text}
    source = fields.pop("source", fields.pop("src", ""))
    if not source:
        raise InvalidArgument(f"invalid {flag} {text!r}: source is required")
    target = fields.pop("target", source)
    mode = fields.pop("mode", "0444")
    try:
        mode_bits = int(mode, 8)
    except ValueError:
        raise InvalidArgument(f"invalid {flag} {text!r}: mode {mode!r} is not octal") from None
    file = {"Name": target, "UID": fields.pop("uid", "0"), "GID": fields.pop("gid", "0"),
            "Mode": mode_bits}
    if fields:
        raise InvalidArgument(f"invalid {flag} {text!r}: unknown field {sorted(fields)[0]!r}")
    kind = "Secret" if flag == "--secret" else "Config"
    return {"File": file, f"{kind}Name": source}


def _ns(flag: str) -> Callable[[str], int]:
    return lambda text: parse_duration(text, flag)


# flag destination -> (path inside the spec, converter); the options both commands share.
SETTERS: dict[str, tuple[tuple[str, ...], Callable[[str], Any]]] = {
    "update_parallelism": (("UpdateConfig", "Parallelism"), lambda t: replicas(t, "--update-parallelism")),
    "update_delay": (("UpdateConfig", "Delay"), _ns("--update-delay")),
    "update_monitor": (("UpdateConfig", "Monitor"), _ns("--update-monitor")),
    "update_failure_action": (("UpdateConfig", "FailureAction"),
                              _choice(FAILURE_ACTIONS, "--update-failure-action")),
    "update_max_failure_ratio": (("UpdateConfig", "MaxFailureRatio"), _ratio),
    "update_order": (("UpdateConfig", "Order"), _choice(ORDERS, "--update-order")),
    "rollback_parallelism": (("RollbackConfig", "Parallelism"),
                             lambda t: replicas(t, "--rollback-parallelism")),
    "rollback_delay": (("RollbackConfig", "Delay"), _ns("--rollback-delay")),
    "rollback_monitor": (("RollbackConfig", "Monitor"), _ns("--rollback-monitor")),
    "rollback_failure_action": (("RollbackConfig", "FailureAction"),
                                _choice(("pause", "continue"), "--rollback-failure-action")),
    "rollback_max_failure_ratio": (("RollbackConfig", "MaxFailureRatio"), _ratio),
    "rollback_order": (("RollbackConfig", "Order"), _choice(ORDERS, "--rollback-order")),
    "restart_condition": (("TaskTemplate", "RestartPolicy", "Condition"),
                          _choice(CONDITIONS, "--restart-condition")),
    "restart_delay": (("TaskTemplate", "RestartPolicy", "Delay"), _ns("--restart-delay")),
    "restart_max_attempts": (("TaskTemplate", "RestartPolicy", "MaxAttempts"),
                             lambda t: replicas(t, "--restart-max-attempts")),
    "restart_window": (("TaskTemplate", "RestartPolicy", "Window"), _ns("--restart-window")),
    "limit_cpu": (("TaskTemplate", "Resources", "Limits", "NanoCPUs"), parse_cpus),
    "limit_memory": (("TaskTemplate", "Resources", "Limits", "MemoryBytes"),
                     lambda t: parse_bytes(t, "--limit-memory")),
    "limit_pids": (("TaskTemplate", "Resources", "Limits", "Pids"),
                   lambda t: replicas(t, "--limit-pids")),
    "reserve_cpu": (("TaskTemplate", "Resources", "Reservations", "NanoCPUs"), parse_cpus),
    "reserve_memory": (("TaskTemplate", "Resources", "Reservations", "MemoryBytes"),
                       lambda t: parse_bytes(t, "--reserve-memory")),
    "health_cmd": (("TaskTemplate", "ContainerSpec", "Healthcheck", "Test"),
                   lambda t: ["CMD-SHELL", t]),
    "health_interval": (("TaskTemplate", "ContainerSpec", "Healthcheck", "Interval"),
                        _ns("--health-interval")),
    "health_timeout": (("TaskTemplate", "ContainerSpec", "Healthcheck", "Timeout"),
                       _ns("--health-timeout")),
    "health_retries": (("TaskTemplate", "ContainerSpec", "Healthcheck", "Retries"),
                       lambda t: replicas(t, "--health-retries")),
    "health_start_period": (("TaskTemplate", "ContainerSpec", "Healthcheck", "StartPeriod"),
                            _ns("--health-start-period")),
    "workdir": (("TaskTemplate", "ContainerSpec", "Dir"), str),
    "user": (("TaskTemplate", "ContainerSpec", "User"), str),
    "hostname": (("TaskTemplate", "ContainerSpec", "Hostname"), str),
    "stop_grace_period": (("TaskTemplate", "ContainerSpec", "StopGracePeriod"),
                          _ns("--stop-grace-period")),
    "stop_signal": (("TaskTemplate", "ContainerSpec", "StopSignal"), str),
    "endpoint_mode": (("EndpointSpec", "Mode"), _choice(("vip", "dnsrr"), "--endpoint-mode")),
    "image": (("TaskTemplate", "ContainerSpec", "Image"), str),
}


def _set(spec: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        spec = spec.setdefault(key, {})
    spec[path[-1]] = value


def _container(spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = spec.setdefault("TaskTemplate", {}).setdefault("ContainerSpec", {})
    return out


def apply(spec: dict[str, Any], kw: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `spec` with the flags in `kw` that are set (not None, not empty) applied;
    both commands' shared flags, plus `update`'s -add/-rm lists."""
    out = copy.deepcopy(spec)
    for dest, (path, convert) in SETTERS.items():
        if kw.get(dest) is not None:
            _set(out, path, convert(kw[dest]))
    if kw.get("no_healthcheck"):
        _container(out)["Healthcheck"] = {"Test": ["NONE"]}
    if kw.get("init"):
        _container(out)["Init"] = True
    if kw.get("tty"):
        _container(out)["TTY"] = True
    if kw.get("replicas") is not None:
        mode = out.setdefault("Mode", {})
        if "Replicated" not in mode:
            raise InvalidArgument("--replicas can only be used with replicated mode")
        mode["Replicated"]["Replicas"] = replicas(kw["replicas"])
    container = _container(out)
    env = [e for e in container.get("Env") or []
           if e.partition("=")[0] not in set(kw.get("env_rm") or ())]
    for item in [*(kw.get("env") or ()), *(kw.get("env_add") or ())]:
        if not item.partition("=")[0]:
            raise InvalidArgument(f"invalid --env {item!r}: use KEY=VALUE")
        env = [e for e in env if e.partition("=")[0] != item.partition("=")[0]] + [item]
    if env or "Env" in container:
        container["Env"] = env
    _labels(out, "Labels", kw.get("label"), kw.get("label_add"), kw.get("label_rm"), "--label")
    _labels(container, "Labels", kw.get("container_label"), kw.get("container_label_add"),
            kw.get("container_label_rm"), "--container-label")
    mounts = [m for m in container.get("Mounts") or []
              if m.get("Target") not in set(kw.get("mount_rm") or ())]
    for text in [*(kw.get("mount") or ()), *(kw.get("mount_add") or ())]:
        new = parse_service_mount(text)
        mounts = [m for m in mounts if m.get("Target") != new["Target"]] + [new]
    if mounts or "Mounts" in container:
        container["Mounts"] = mounts
    placement = out.setdefault("TaskTemplate", {}).setdefault("Placement", {})
    constraints = [c for c in placement.get("Constraints") or []
                   if c not in set(kw.get("constraint_rm") or ())]
    for c in [*(kw.get("constraint") or ()), *(kw.get("constraint_add") or ())]:
        if not any(op in c for op in ("==", "!=")):
            raise InvalidArgument(f"invalid --constraint {c!r}: expected e.g."
                                  " node.labels.zone==east or node.role!=worker")
        if c not in constraints:
            constraints.append(c)
    if constraints or "Constraints" in placement:
        placement["Constraints"] = constraints
    if not placement:
        del out["TaskTemplate"]["Placement"]
    _ports(out, kw)
    _networks(out, kw)
    for flag, key in (("secret", "Secrets"), ("config", "Configs")):
        refs = [parse_file_ref(t, f"--{flag}") for t in [*(kw.get(flag) or ()),
                                                          *(kw.get(f"{flag}_add") or ())]]
        drop = set(kw.get(f"{flag}_rm") or ())
        name_key = f"{key[:-1]}Name"
        kept = [r for r in container.get(key) or [] if r.get(name_key) not in drop
                and all(r.get(name_key) != n[name_key] for n in refs)]
        if refs or kept or key in container:
            container[key] = kept + refs
    if kw.get("force"):
        template = out["TaskTemplate"]
        template["ForceUpdate"] = int(template.get("ForceUpdate") or 0) + 1
    return out


def _labels(doc: dict[str, Any], key: str, *lists_and_flag: Any) -> None:
    set_, add, remove, flag = lists_and_flag
    labels = {k: v for k, v in (doc.get(key) or {}).items() if k not in set(remove or ())}
    labels.update(_pairs(tuple(set_ or ()) + tuple(add or ()), flag))
    if labels or key in doc:
        doc[key] = labels


def _ports(spec: dict[str, Any], kw: Mapping[str, Any]) -> None:
    endpoint = spec.setdefault("EndpointSpec", {})
    drop = set()
    for text in kw.get("publish_rm") or ():
        port, _, proto = str(text).partition("/")
        if not is_digits(port):
            raise InvalidArgument(f"invalid --publish-rm {text!r}: expected a target port")
        drop.add((int(port), proto or "tcp"))
    ports = [p for p in endpoint.get("Ports") or []
             if (p.get("TargetPort"), p.get("Protocol", "tcp")) not in drop]
    for text in [*(kw.get("publish") or ()), *(kw.get("publish_add") or ())]:
        for new in parse_publish(text):
            ports = [p for p in ports if (p.get("TargetPort"), p.get("Protocol")) !=
                     (new["TargetPort"], new["Protocol"])] + [new]
    if ports or "Ports" in endpoint:
        endpoint["Ports"] = ports
    if not endpoint:
        del spec["EndpointSpec"]


def _networks(spec: dict[str, Any], kw: Mapping[str, Any]) -> None:
    template = spec.setdefault("TaskTemplate", {})
    drop = set(kw.get("network_rm") or ())
    nets = [n for n in template.get("Networks") or [] if n.get("Target") not in drop]
    for text in [*(kw.get("network") or ()), *(kw.get("network_add") or ())]:
        fields = _pairs(text.split(","), "--network") if "=" in text else {"name": text}
        name = fields.get("name") or fields.get("target", "")
        if not name:
            raise InvalidArgument(f"invalid --network {text!r}: a network name is required")
        entry: dict[str, Any] = {"Target": name}
        if fields.get("alias"):
            entry["Aliases"] = [fields["alias"]]
        nets = [n for n in nets if n.get("Target") != name] + [entry]
    if nets or "Networks" in template:
        template["Networks"] = nets


def create_spec(name: str, image: str, args: tuple[str, ...], kw: Mapping[str, Any]) -> dict[str, Any]:
    """The ServiceSpec `service create` sends, with Docker's CLI defaults."""
    if not name:
        raise InvalidArgument("a service needs a name: use --name")
    mode = kw.get("mode") or "replicated"
    if mode not in ("replicated", "global"):
        raise InvalidArgument(f"invalid --mode {mode!r}: expected replicated or global")
    if mode == "global" and kw.get("replicas") is not None:
        raise InvalidArgument("--replicas can only be used with replicated mode")
    container: dict[str, Any] = {"Image": image}
    if kw.get("entrypoint"):
        container["Command"] = [kw["entrypoint"]]
    if args:
        container["Args"] = list(args)
    spec: dict[str, Any] = {
        "Name": name,
        "TaskTemplate": {"ContainerSpec": container, "ForceUpdate": 0},
        "Mode": {"Replicated": {"Replicas": 1}} if mode == "replicated" else {"Global": {}},
        "UpdateConfig": {"Parallelism": 1, "FailureAction": "pause", "Order": "stop-first",
                         "MaxFailureRatio": 0},
        "RollbackConfig": {"Parallelism": 1, "FailureAction": "pause", "Order": "stop-first",
                           "MaxFailureRatio": 0},
    }
    return apply(spec, kw)
