"""A compose project as a stack: one ServiceSpec per service, and the networks, volumes,
secrets and configs they use, named `<stack>_<name>` and labelled
`com.docker.stack.namespace=<stack>` as Docker's `stack deploy` makes them.

Pure conversion from the normalised model (`plan`); `stackdeploy` converges a daemon to it.
Keys Swarm does not apply are reported, one warning per key, never dropped silently.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from portside.compose import syntax
from portside.compose.errors import ComposeError
from portside.compose.model import FileRef, Mount, Project, Service

NAMESPACE = "com.docker.stack.namespace"
IMAGE_LABEL = "com.docker.stack.image"
HASH_LABEL = "io.portside.stack.spec-hash"  # lets a re-deploy skip what did not change
NANO = 10**9

# Service fields of the model a Swarm task does not apply (Docker's stack deploy ignores
# them too); `restart` is not here: it becomes the RestartPolicy, as Docker converts it.
UNSUPPORTED = ("build", "container_name", "depends_on", "network_mode", "devices",
               "privileged", "ipc", "pid", "shm_size", "security_opt", "cpu_shares",
               "oom_score_adj", "extra_hosts", "stdin_open", "pull_policy", "platform",
               "expose", "tmpfs", "domainname", "ulimits", "logging")


@dataclass
class Resource:
    """A network, volume, secret or config the stack makes (Docker's shape as `body`)."""

    name: str
    body: dict[str, Any]
    external: bool = False


@dataclass
class StackPlan:
    namespace: str
    services: dict[str, dict[str, Any]] = field(default_factory=dict)  # full name -> spec
    networks: list[Resource] = field(default_factory=list)
    volumes: list[Resource] = field(default_factory=list)
    secrets: list[Resource] = field(default_factory=list)
    configs: list[Resource] = field(default_factory=list)


def _ns(seconds: Any) -> int:
    return int(round(syntax.parse_duration(seconds) * NANO))


def _set_if(doc: dict[str, Any], key: str, value: Any) -> None:
    if value not in (None, "", [], {}):
        doc[key] = value


def spec_hash(spec: dict[str, Any]) -> str:
    body = json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(body).hexdigest()[:16]


def _update_config(conf: dict[str, Any] | None) -> dict[str, Any] | None:
    if conf is None:
        return None
    out: dict[str, Any] = {"Parallelism": int(conf.get("parallelism", 1))}
    for key, api in (("delay", "Delay"), ("monitor", "Monitor")):
        if key in conf:
            out[api] = _ns(conf[key])
    for key, api in (("failure_action", "FailureAction"), ("order", "Order")):
        _set_if(out, api, conf.get(key))
    if "max_failure_ratio" in conf:
        out["MaxFailureRatio"] = float(conf["max_failure_ratio"])
    return out


def _restart_policy(svc: Service) -> dict[str, Any] | None:
    policy = svc.deploy.restart_policy
    if policy is not None:
        out: dict[str, Any] = {}
        _set_if(out, "Condition", policy.get("condition"))
        for key, api in (("delay", "Delay"), ("window", "Window")):
            if key in policy:
                out[api] = _ns(policy[key])
        if "max_attempts" in policy:
            out["MaxAttempts"] = int(policy["max_attempts"])
        return out
    # `restart:` translated as Docker's convertRestartPolicy does
    name, _, count = (svc.restart or "").partition(":")
    if name in ("always", "unless-stopped"):
        return {"Condition": "any"}
    if name == "no":
        return {"Condition": "none"}
    if name == "on-failure":
        return {"Condition": "on-failure", **({"MaxAttempts": int(count)} if count else {})}
    return None


def _resources(svc: Service) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, api in (("limits", "Limits"), ("reservations", "Reservations")):
        r = getattr(svc.deploy.resources, key)
        if r is None:
            continue
        part: dict[str, Any] = {}
        if r.cpus is not None:
            part["NanoCPUs"] = int(round(r.cpus * NANO))
        _set_if(part, "MemoryBytes", r.memory)
        if r.pids is not None and key == "limits":
            part["Pids"] = r.pids
        _set_if(out, api, part)
    return out


def _mount(m: Mount, ns: str, project: Project) -> dict[str, Any]:
    out: dict[str, Any] = {"Type": m.type, "Target": m.target}
    if m.type == "volume" and m.source:
        vol = project.volumes.get(m.source)
        out["Source"] = vol.name if vol else f"{ns}_{m.source}"
        out["VolumeOptions"] = {"Labels": {NAMESPACE: ns},
                                **({"NoCopy": True} if (m.volume or {}).get("nocopy") else {})}
    elif m.source:
        out["Source"] = m.source
    if m.read_only:
        out["ReadOnly"] = True
    if m.type == "tmpfs" and m.tmpfs and m.tmpfs.get("size"):
        out["TmpfsOptions"] = {"SizeBytes": m.tmpfs["size"]}
    return out


def _file_refs(refs: list[FileRef], kind: str, ns: str, project: Project) -> list[dict[str, Any]]:
    declared = project.secrets if kind == "Secret" else project.configs
    out = []
    for r in refs:
        top = declared.get(r.source)
        name = top.name if top is not None else f"{ns}_{r.source}"
        target = r.target.removeprefix("/run/secrets/") if kind == "Secret" else r.target
        out.append({"File": {"Name": target, "UID": r.uid or "0", "GID": r.gid or "0",
                             "Mode": r.mode if r.mode is not None else 0o444},
                    f"{kind}Name": name})
    return out


def service_spec(svc: Service, ns: str, project: Project) -> dict[str, Any]:
    """The ServiceSpec Docker's stack code would send for `svc` in stack `ns`."""
    where = f"services.{svc.name}"
    if not svc.image:
        raise ComposeError("", where, "stack deploy needs an image (build it and push it"
                           " first; build: is not run by stack deploy)")
    container: dict[str, Any] = {"Image": svc.image,
                                 "Labels": {**svc.labels, NAMESPACE: ns}}
    _set_if(container, "Command", svc.entrypoint)
    _set_if(container, "Args", svc.command)
    _set_if(container, "Hostname", svc.hostname)
    _set_if(container, "Env", sorted(f"{k}={v}" for k, v in svc.environment.items()
                                     if v is not None))
    _set_if(container, "Dir", svc.working_dir)
    _set_if(container, "User", svc.user)
    _set_if(container, "StopSignal", svc.stop_signal)
    if svc.stop_grace_period is not None:
        container["StopGracePeriod"] = int(round(svc.stop_grace_period * NANO))
    for flag, key in ((svc.tty, "TTY"), (svc.read_only, "ReadOnly")):
        if flag:
            container[key] = True
    if svc.init is not None:
        container["Init"] = svc.init
    _set_if(container, "CapabilityAdd", svc.cap_add)
    _set_if(container, "CapabilityDrop", svc.cap_drop)
    _set_if(container, "Sysctls", svc.sysctls)
    _set_if(container, "DNSConfig", {k: v for k, v in (("Nameservers", svc.dns),
                                                        ("Search", svc.dns_search)) if v})
    _set_if(container, "Mounts", [_mount(m, ns, project) for m in svc.volumes])
    _set_if(container, "Secrets", _file_refs(svc.secrets, "Secret", ns, project))
    _set_if(container, "Configs", _file_refs(svc.configs, "Config", ns, project))
    hc = svc.healthcheck
    if hc is not None:
        check: dict[str, Any] = {"Test": ["NONE"] if hc.disable else hc.test}
        for key, api in (("interval", "Interval"), ("timeout", "Timeout"),
                         ("start_period", "StartPeriod"), ("start_interval", "StartInterval")):
            if getattr(hc, key) is not None:
                check[api] = int(round(getattr(hc, key) * NANO))
        if hc.retries is not None:
            check["Retries"] = hc.retries
        container["Healthcheck"] = {k: v for k, v in check.items() if v is not None}
    template: dict[str, Any] = {"ContainerSpec": container, "ForceUpdate": 0}
    _set_if(template, "Resources", _resources(svc))
    _set_if(template, "RestartPolicy", _restart_policy(svc))
    placement = svc.deploy.placement or {}
    place: dict[str, Any] = {}
    _set_if(place, "Constraints", list(placement.get("constraints") or []))
    _set_if(place, "Preferences", [{"Spread": {"SpreadDescriptor": p["spread"]}}
                                   for p in placement.get("preferences") or []])
    if placement.get("max_replicas_per_node"):
        place["MaxReplicas"] = int(placement["max_replicas_per_node"])
    _set_if(template, "Placement", place)
    nets = []
    for net_name in sorted(svc.networks):
        net = project.networks.get(net_name)
        target = net.name if net is not None else f"{ns}_{net_name}"
        nets.append({"Target": target,
                     "Aliases": [svc.name, *svc.networks[net_name].aliases]})
    _set_if(template, "Networks", nets)
    mode = svc.deploy.mode or "replicated"
    modes = {"replicated": {"Replicated": {"Replicas": svc.deploy.replicas}},
             "global": {"Global": {}},
             "replicated-job": {"ReplicatedJob": {"MaxConcurrent": 1,
                                                  "TotalCompletions": svc.deploy.replicas}},
             "global-job": {"GlobalJob": {}}}
    spec: dict[str, Any] = {
        "Name": f"{ns}_{svc.name}",
        "Labels": {**svc.deploy.labels, NAMESPACE: ns, IMAGE_LABEL: svc.image},
        "TaskTemplate": template, "Mode": modes[mode],
        "EndpointSpec": {"Mode": svc.deploy.endpoint_mode or "vip", "Ports": sorted(
            ({"Protocol": p.protocol, "TargetPort": p.target,
              **({"PublishedPort": int(p.published)} if p.published else {}),
              "PublishMode": p.mode} for p in svc.ports),
            key=lambda p: (p.get("PublishedPort", 0), p["TargetPort"]))},
    }
    for key, conf in (("UpdateConfig", svc.deploy.update_config),
                      ("RollbackConfig", svc.deploy.rollback_config)):
        _set_if(spec, key, _update_config(conf))
    return spec


def unsupported(project: Project) -> list[str]:
    """One warning per service key stack deploy does not apply (keys portside never
    applies, as links, are warned about by the normaliser already)."""
    out = []
    for name, svc in sorted(project.services.items()):
        for key in UNSUPPORTED:
            if getattr(svc, key, None) not in (None, False, [], {}):
                out.append(f"services.{name}.{key}: not applied by stack deploy (Swarm"
                           " starts each service on its own); ignored")
    return out


def plan(project: Project, warn: Callable[[str], None] = lambda m: None) -> StackPlan:
    """The stack `project.name` as Docker's stack deploy would make it."""
    ns = project.name
    label = {NAMESPACE: ns}
    out = StackPlan(ns)
    for message in unsupported(project):
        warn(message)
    for svc in project.services.values():
        spec = service_spec(svc, ns, project)
        spec["Labels"][HASH_LABEL] = spec_hash(spec)
        out.services[spec["Name"]] = spec
    used = {n for s in project.services.values() for n in s.networks}
    for name in sorted(used):
        net = project.networks.get(name)
        if net is not None and net.external:
            out.networks.append(Resource(net.name, {}, external=True))
            continue
        full = net.name if net else f"{ns}_{name}"
        body = {"Name": full, "Driver": (net.driver if net else None) or "bridge",
                "Labels": {**(net.labels if net else {}), **label},
                "Internal": bool(net and net.internal), "Attachable": bool(net and net.attachable),
                "Options": dict(net.driver_opts) if net else {}}
        if net is not None and net.ipam:
            body["IPAM"] = net.ipam
        out.networks.append(Resource(full, body))
    for _key, vol in sorted(project.volumes.items()):
        if vol.external:
            out.volumes.append(Resource(vol.name, {}, external=True))
            continue
        out.volumes.append(Resource(vol.name, {
            "Name": vol.name, "Driver": vol.driver or "local",
            "Labels": {**vol.labels, **label}, "DriverOpts": dict(vol.driver_opts)}))
    for kind, declared, target in (("secret", project.secrets, out.secrets),
                                   ("config", project.configs, out.configs)):
        for _key, item in sorted(declared.items()):
            if item.external:
                target.append(Resource(item.name, {}, external=True))
                continue
            target.append(Resource(item.name, {"Name": item.name, "Labels": label,
                                                    "Data": _content(item, project, kind)}))
    return out


def _content(item: Any, project: Project, kind: str) -> bytes:
    """The bytes of a secret or config (from its file, variable or content)."""
    if item.file:
        with open(item.file, "rb") as f:
            raw = f.read()
    elif item.environment:
        raw = project.environment.get(item.environment, "").encode()
    else:
        raw = (item.content or "").encode()
    return raw
