"""A service's replica as a Docker Engine API `POST /containers/create` body.

Pure: the project model in, the request body out (what Docker Compose would send), so it
is testable without a daemon. Every network the service joins is in
`NetworkingConfig.EndpointsConfig` (API 1.44+), the first one also in `NetworkMode`, so
a container is attached to all of them, with its aliases, when it starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from portside.compose import naming
from portside.compose.model import Mount, Project, Service
from portside.engine.secretfiles import SECRETS_KEY

NS = 1_000_000_000


def _seconds_ns(value: float | None) -> int | None:
    return int(value * NS) if value is not None else None


def healthcheck(service: Service) -> dict[str, Any] | None:
    h = service.healthcheck
    if h is None:
        return None
    if h.disable:
        return {"Test": ["NONE"]}
    doc: dict[str, Any] = {"Test": h.test} if h.test else {}
    for key, value in (("Interval", h.interval), ("Timeout", h.timeout),
                       ("StartPeriod", h.start_period), ("StartInterval", h.start_interval)):
        if value is not None:
            doc[key] = _seconds_ns(value)
    if h.retries is not None:
        doc["Retries"] = h.retries
    return doc


def mount(project: Project, m: Mount) -> dict[str, Any]:
    doc: dict[str, Any] = {"Type": m.type, "Target": m.target}
    if m.type == "volume":
        if m.source:
            doc["Source"] = project.volumes[m.source].name
        if m.volume and m.volume.get("nocopy"):
            doc["VolumeOptions"] = {"NoCopy": True}
    elif m.type == "bind":
        doc["Source"] = m.source
        if m.bind and m.bind.get("propagation"):
            doc["BindOptions"] = {"Propagation": m.bind["propagation"]}
    elif m.type == "tmpfs" and m.tmpfs:
        doc["TmpfsOptions"] = {k: v for k, v in (("SizeBytes", m.tmpfs.get("size")),
                                                 ("Mode", m.tmpfs.get("mode"))) if v}
    if m.read_only:
        doc["ReadOnly"] = True
    return doc


def ordered_networks(service: Service) -> list[str]:
    """The service's networks, highest priority first (then by name), as Compose joins."""
    return sorted(service.networks, key=lambda n: (-(service.networks[n].priority or 0), n))


def endpoint(project: Project, service: Service, key: str, name: str) -> dict[str, Any]:
    """EndpointSettings for joining network `key`: the service name is an alias on every
    network, so all replicas answer to it (DNS round-robin)."""
    net = service.networks[key]
    doc: dict[str, Any] = {"Aliases": [service.name, *net.aliases]}
    ipam = {k: v for k, v in (("IPv4Address", net.ipv4_address),
                              ("IPv6Address", net.ipv6_address)) if v}
    if ipam:
        doc["IPAMConfig"] = ipam
    return doc


def network_mode(project: Project, service: Service, containers: dict[str, str]) -> str:
    """HostConfig.NetworkMode: the first network's real name, or the service's mode
    (`service:x` becomes `container:<id of x's first replica>`)."""
    mode = service.network_mode
    if mode and mode.startswith("service:"):
        return f"container:{containers[mode[8:]]}"
    if mode:
        return mode
    nets = ordered_networks(service)
    return project.networks[nets[0]].name if nets else "none"


def stored_secrets(project: Project, service: Service) -> list[dict[str, Any]]:
    """`external: true` secrets come from the daemon's secret store (`portside secret
    create`): Docker's SecretReferences, which the engine writes at /run/secrets."""
    out: list[dict[str, Any]] = []
    for ref in service.secrets:
        secret = project.secrets[ref.source]
        if secret.external:
            file: dict[str, Any] = {"Name": ref.target, "UID": ref.uid or "0",
                                    "GID": ref.gid or "0"}
            if ref.mode is not None:
                file["Mode"] = ref.mode
            out.append({"SecretName": secret.name, "File": file})
    return out


def create_body(project: Project, service: Service, number: int, image: str,
                secrets_dir: Path | None = None, containers: dict[str, str] | None = None,
                oneoff: bool = False, command: list[str] | None = None,
                name: str = "", image_id: str = "") -> dict[str, Any]:
    """The create request of replica `number` (1-based) of `service`."""
    name = name or naming.container_name(project, service, number)
    env = [f"{k}={v}" for k, v in service.environment.items() if v is not None]
    labels = naming.container_labels(project, service, number, oneoff)
    labels[naming.IMAGE] = image_id or image
    mounts = [mount(project, m) for m in service.volumes]
    if secrets_dir is not None:
        for kind, refs in (("secrets", service.secrets), ("configs", service.configs)):
            for ref in refs:
                if kind == "secrets" and project.secrets[ref.source].external:
                    continue  # the daemon's store gives it (below)
                mounts.append({"Type": "bind", "Source": str(secrets_dir / kind / service.name / ref.source),
                               "Target": ref.target, "ReadOnly": True})
    stored = stored_secrets(project, service)
    limits = service.deploy.resources.limits
    host: dict[str, Any] = {
        "Mounts": mounts,
        "Tmpfs": {t.partition(":")[0]: t.partition(":")[2] for t in service.tmpfs},
        "PortBindings": {},
        "NetworkMode": network_mode(project, service, containers or {}),
        "RestartPolicy": _restart(service),
        "ReadonlyRootfs": service.read_only, "CapAdd": service.cap_add,
        "CapDrop": service.cap_drop, "SecurityOpt": service.security_opt,
        "ExtraHosts": [f"{h}:{ip}" for h, ips in service.extra_hosts.items()
                       for ip in (ips if isinstance(ips, list) else [ips])],
        "Dns": service.dns, "DnsSearch": service.dns_search,
        "Privileged": service.privileged, "Sysctls": service.sysctls,
        "Ulimits": [{"Name": k, "Soft": v["soft"], "Hard": v["hard"]}
                    for k, v in service.ulimits.items()],
    }
    if stored:
        host[SECRETS_KEY] = stored
    if service.init is not None:
        host["Init"] = service.init
    if service.logging:
        host["LogConfig"] = {"Type": service.logging.get("driver") or "json-file",
                             "Config": service.logging.get("options") or {}}
    for key, value in (("ShmSize", service.shm_size), ("CpuShares", service.cpu_shares),
                       ("OomScoreAdj", service.oom_score_adj), ("IpcMode", service.ipc),
                       ("PidMode", service.pid)):
        if value is not None:
            host[key] = value
    if limits:
        if limits.memory:
            host["Memory"] = limits.memory
        if limits.cpus:
            host["NanoCpus"] = int(limits.cpus * NS)
        if limits.pids:
            host["PidsLimit"] = limits.pids
    exposed: dict[str, dict[str, Any]] = {f"{e}/tcp" if "/" not in e else e: {}
                                          for e in service.expose}
    for p in service.ports:
        key = f"{p.target}/{p.protocol}"
        exposed[key] = {}
        host["PortBindings"].setdefault(key, []).append(
            {"HostIp": p.host_ip or "", "HostPort": p.published or ""})
    body: dict[str, Any] = {
        "Image": image, "Env": env, "Labels": labels, "ExposedPorts": exposed,
        "Tty": service.tty, "OpenStdin": service.stdin_open, "HostConfig": host,
    }
    if command is not None:
        body["Cmd"] = command
    elif service.command is not None:
        body["Cmd"] = service.command
    if service.entrypoint is not None:
        body["Entrypoint"] = service.entrypoint
    for key, value in (("User", service.user), ("WorkingDir", service.working_dir),
                       ("Hostname", service.hostname), ("Domainname", service.domainname),
                       ("StopSignal", service.stop_signal)):
        if value:
            body[key] = value
    if service.stop_grace_period is not None:
        body["StopTimeout"] = int(service.stop_grace_period)
    if (check := healthcheck(service)) is not None:
        body["Healthcheck"] = check
    if not service.network_mode and service.networks:
        body["NetworkingConfig"] = {"EndpointsConfig": {
            project.networks[key].name: endpoint(project, service, key, name)
            for key in ordered_networks(service)}}
    return body


def _restart(service: Service) -> dict[str, Any]:
    """`restart:`, else `deploy.restart_policy` (any -> always, on-failure, none -> no)."""
    policy = service.deploy.restart_policy
    if service.restart is None and policy:
        condition = policy.get("condition", "any")
        name = {"any": "always", "on-failure": "on-failure"}.get(condition, "no")
        count = int(policy.get("max_attempts", 0)) if name == "on-failure" else 0
        return {"Name": name, "MaximumRetryCount": count}
    name, _, retries = (service.restart or "no").partition(":")
    return {"Name": name, "MaximumRetryCount": int(retries or 0)}
