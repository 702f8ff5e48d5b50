"""The normalised model of a compose project: what `compose config` prints and `up` runs.

Every short syntax is expanded, every path is absolute, durations are seconds (printed as
Go durations), sizes are bytes. Field names are the Compose spec's keys, so `to_dict`
gives the spec's long form.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from portside.compose.syntax import format_duration

DURATION = {"duration": True}


@dataclass
class Port:
    target: int
    published: str | None = None
    host_ip: str | None = None
    protocol: str = "tcp"
    mode: str = "ingress"
    name: str | None = None
    app_protocol: str | None = None


@dataclass
class Mount:
    type: str
    source: str | None = None
    target: str = ""
    read_only: bool = False
    bind: dict[str, Any] | None = None
    volume: dict[str, Any] | None = None
    tmpfs: dict[str, Any] | None = None
    consistency: str | None = None


@dataclass
class FileRef:
    """A secret or config a service uses (source = the top-level name)."""

    source: str
    target: str
    uid: str | None = None
    gid: str | None = None
    mode: int | None = None


@dataclass
class Dependency:
    condition: str = "service_started"
    restart: bool = False
    required: bool = True


@dataclass
class ServiceNetwork:
    aliases: list[str] = field(default_factory=list)
    ipv4_address: str | None = None
    ipv6_address: str | None = None
    priority: int | None = None


@dataclass
class Healthcheck:
    test: list[str] | None = None
    interval: float | None = field(default=None, metadata=DURATION)
    timeout: float | None = field(default=None, metadata=DURATION)
    retries: int | None = None
    start_period: float | None = field(default=None, metadata=DURATION)
    start_interval: float | None = field(default=None, metadata=DURATION)
    disable: bool = False


@dataclass
class Build:
    context: str
    dockerfile: str = "Dockerfile"
    dockerfile_inline: str | None = None
    args: dict[str, str | None] = field(default_factory=dict)
    target: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    secrets: list[FileRef] = field(default_factory=list)
    network: str | None = None
    no_cache: bool = False
    pull: bool = False
    tags: list[str] = field(default_factory=list)
    extra_hosts: dict[str, Any] = field(default_factory=dict)


@dataclass
class Resources:
    cpus: float | None = None
    memory: int | None = None
    pids: int | None = None


@dataclass
class ResourceSpec:
    limits: Resources | None = None
    reservations: Resources | None = None


@dataclass
class Deploy:
    """The `deploy:` section; `compose up` reads replicas, resources and restart_policy,
    `stack deploy` all of it (durations in update/rollback/restart_policy are seconds)."""

    replicas: int = 1
    resources: ResourceSpec = field(default_factory=ResourceSpec)
    restart_policy: dict[str, Any] | None = None
    labels: dict[str, str] = field(default_factory=dict)
    mode: str | None = None
    endpoint_mode: str | None = None
    update_config: dict[str, Any] | None = None
    rollback_config: dict[str, Any] | None = None
    placement: dict[str, Any] | None = None


@dataclass
class Service:
    name: str
    image: str | None = None
    build: Build | None = None
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    environment: dict[str, str | None] = field(default_factory=dict)
    ports: list[Port] = field(default_factory=list)
    expose: list[str] = field(default_factory=list)
    volumes: list[Mount] = field(default_factory=list)
    tmpfs: list[str] = field(default_factory=list)
    networks: dict[str, ServiceNetwork] = field(default_factory=dict)
    network_mode: str | None = None
    depends_on: dict[str, Dependency] = field(default_factory=dict)
    healthcheck: Healthcheck | None = None
    restart: str | None = None
    deploy: Deploy = field(default_factory=Deploy)
    init: bool | None = None
    user: str | None = None
    working_dir: str | None = None
    read_only: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    security_opt: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    logging: dict[str, Any] | None = None
    stop_signal: str | None = None
    stop_grace_period: float | None = field(default=None, metadata=DURATION)
    hostname: str | None = None
    domainname: str | None = None
    extra_hosts: dict[str, Any] = field(default_factory=dict)
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)
    secrets: list[FileRef] = field(default_factory=list)
    configs: list[FileRef] = field(default_factory=list)
    container_name: str | None = None
    privileged: bool = False
    tty: bool = False
    stdin_open: bool = False
    pull_policy: str | None = None
    platform: str | None = None
    sysctls: dict[str, str] = field(default_factory=dict)
    ulimits: dict[str, dict[str, int]] = field(default_factory=dict)
    devices: list[Any] = field(default_factory=list)
    shm_size: int | None = None
    cpu_shares: int | None = None
    oom_score_adj: int | None = None
    ipc: str | None = None
    pid: str | None = None
    extensions: dict[str, Any] = field(default_factory=dict)

    @property
    def replicas(self) -> int:
        return self.deploy.replicas

    def config_hash(self) -> str:
        """What `up` compares to decide whether a container is out of date: a digest of
        the service's resolved config without its replica count (scaling recreates
        nothing)."""
        body = to_dict(self)
        body.pop("deploy", {}).pop("replicas", None)
        data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(data).hexdigest()


@dataclass
class Network:
    name: str
    driver: str | None = None
    driver_opts: dict[str, str] = field(default_factory=dict)
    ipam: dict[str, Any] | None = None
    external: bool = False
    internal: bool = False
    attachable: bool = False
    enable_ipv6: bool = False
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Volume:
    name: str
    driver: str | None = None
    driver_opts: dict[str, str] = field(default_factory=dict)
    external: bool = False
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Secret:
    """A top-level secret or config: from a file, a variable, inline content or external."""

    name: str
    file: str | None = None
    environment: str | None = None
    content: str | None = None
    external: bool = False


@dataclass
class Project:
    name: str
    working_dir: str
    config_files: list[str]
    services: dict[str, Service] = field(default_factory=dict)
    networks: dict[str, Network] = field(default_factory=dict)
    volumes: dict[str, Volume] = field(default_factory=dict)
    secrets: dict[str, Secret] = field(default_factory=dict)
    configs: dict[str, Secret] = field(default_factory=dict)
    disabled: dict[str, Service] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)

    def service(self, name: str) -> Service:
        from portside.compose.errors import ComposeError

        if name in self.services:
            return self.services[name]
        if name in self.disabled:
            return self.disabled[name]
        raise ComposeError("", "", f"no such service: {name}")


def _plain(value: Any, duration: bool = False) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if f.name in ("name",) and isinstance(value, Service):
                continue
            if f.name == "extensions":
                out.update(item)
                continue
            if item is None or item is False or item == {} or item == []:
                continue
            plain = _plain(item, bool(f.metadata.get("duration")))
            if plain != {}:
                out[f.name] = plain
        return out
    if duration and isinstance(value, int | float):
        return format_duration(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def to_dict(obj: Any) -> dict[str, Any]:
    """The model (or part of it) as plain data in the spec's long form, empty values left
    out."""
    result: dict[str, Any] = _plain(obj)
    if isinstance(obj, Project):
        result.pop("disabled", None)
        result.pop("environment", None)
        result.pop("working_dir", None)
        result.pop("config_files", None)
        result = {"name": result.pop("name"), **result}
    return result
