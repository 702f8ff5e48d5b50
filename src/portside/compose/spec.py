"""The structure of a Compose file (the Compose Specification), in `schema`'s combinators.

`IGNORED` lists service keys portside reads but does not apply on a single host; the
normaliser warns about them instead of failing.
"""

from __future__ import annotations

from typing import Any

from portside.compose import syntax
from portside.compose.errors import ComposeError, KeyPath
from portside.compose.schema import (
    AnyValue,
    Bool,
    Either,
    Fmt,
    Int,
    ListOrDict,
    Names,
    Null,
    Num,
    Seq,
    Str,
    Struct,
)
from portside.numbers import is_digits

STR = Str()
STRS = Seq(Str())
STR_OR_STRS = Either(Str(), Seq(Str()), expect="a string or a list of strings")
COMMAND = Either(Str(), Seq(Str(numbers=True)), expect="a string or a list of strings")
DURATION = Either(Str(fmt=syntax.parse_duration), Num(), expect="a duration like 30s")
SIZE = Either(Str(fmt=syntax.parse_bytes), Int(0), expect="a size like 512m")
ANY_MAP = Struct({})
OPTS = ListOrDict()


class _OpenMap(Struct):
    """A mapping with arbitrary keys (driver options)."""

    def check(self, value: Any, file: str, path: KeyPath) -> None:
        if not isinstance(value, dict):
            super().check(value, file, path)


OPEN = _OpenMap({})


def _condition(value: Any) -> None:
    if value not in ("service_started", "service_healthy", "service_completed_successfully"):
        raise ValueError(f"invalid condition \"{value}\": expected service_started,"
                         " service_healthy or service_completed_successfully")


def _restart(value: str) -> None:
    policy, _, count = value.partition(":")
    if policy not in ("no", "always", "on-failure", "unless-stopped") or (
            count and (policy != "on-failure" or not is_digits(count))):
        raise ValueError(f"invalid restart policy \"{value}\": expected no, always,"
                         " on-failure[:N] or unless-stopped")


BUILD = Either(
    Str(),
    Struct({
        "context": STR, "dockerfile": STR, "dockerfile_inline": STR, "args": OPTS,
        "target": STR, "labels": OPTS, "cache_from": STRS, "cache_to": STRS,
        "no_cache": Bool(), "pull": Bool(), "network": STR, "shm_size": SIZE,
        "extra_hosts": Either(ListOrDict(), STRS, expect="a list or mapping"),
        "secrets": Seq(Either(Str(), Struct({"source": STR, "target": STR, "uid": Str(True),
                                             "gid": Str(True), "mode": Either(Int(), Str(),
                                                                              expect="a mode")},
                                            required=("source",)),
                              expect="a secret name or mapping")),
        "tags": STRS, "platforms": STRS, "platform": STR, "ssh": Either(ListOrDict(), STRS,
                                                                        expect="a list"),
        "additional_contexts": OPTS, "isolation": STR, "privileged": Bool(),
        "ulimits": OPEN,
    }),
    expect="a build context path or a mapping")

PORT_LONG = Struct({
    "target": Int(1), "published": Either(Fmt(Str(), syntax.check_published),
                                          Fmt(Int(1), syntax.check_published),
                                          expect="a port or range"),
    "host_ip": Fmt(Str(), lambda v: syntax.check_ip(v, "host_ip", v)),
    "protocol": Str(choices=syntax.PROTOCOLS), "mode": Str(choices=("host", "ingress")),
    "name": STR, "app_protocol": STR,
}, required=("target",))
PORTS = Seq(Either(Fmt(Str(numbers=True), syntax.parse_port), PORT_LONG,
                   expect="a port string or mapping"))

VOLUME_LONG = Struct({
    "type": Str(choices=("volume", "bind", "tmpfs", "npipe", "cluster", "image")),
    "source": STR, "target": STR, "read_only": Bool(), "consistency": STR,
    "bind": Struct({"propagation": STR, "create_host_path": Bool(),
                    "selinux": Str(choices=("z", "Z")), "recursive": STR}),
    "volume": Struct({"nocopy": Bool(), "subpath": STR}),
    "tmpfs": Struct({"size": SIZE, "mode": Either(Int(), Str(), expect="a mode")}),
    "image": Struct({"subpath": STR}),
}, required=("type", "target"))
VOLUMES = Seq(Either(Fmt(Str(), syntax.parse_volume), VOLUME_LONG,
                     expect="a volume string or mapping"))

FILE_REFS = Seq(Either(Str(), Struct({
    "source": STR, "target": STR, "uid": Str(numbers=True), "gid": Str(numbers=True),
    "mode": Either(Int(), Str(), expect="a mode")}, required=("source",)),
    expect="a name or a mapping"))

HEALTHCHECK = Struct({
    "test": COMMAND, "interval": DURATION, "timeout": DURATION, "retries": Int(0),
    "start_period": DURATION, "start_interval": DURATION, "disable": Bool(),
})

RESOURCES = Struct({
    "cpus": Either(Num(), Str(), expect="a number"), "memory": SIZE, "pids": Int(),
    "devices": Seq(ANY_MAP), "generic_resources": Seq(ANY_MAP),
})

UPDATE_CONFIG = Struct({
    "parallelism": Int(0), "delay": DURATION, "monitor": DURATION,
    "failure_action": Str(choices=("pause", "continue", "rollback")),
    "max_failure_ratio": Num(), "order": Str(choices=("stop-first", "start-first")),
})

DEPLOY = Struct({
    "mode": Str(choices=("replicated", "global", "replicated-job", "global-job")),
    "replicas": Int(0), "labels": OPTS, "endpoint_mode": Str(choices=("vip", "dnsrr")),
    "resources": Struct({"limits": RESOURCES, "reservations": RESOURCES}),
    "restart_policy": Struct({"condition": Str(choices=("none", "on-failure", "any")),
                              "delay": DURATION, "max_attempts": Int(0), "window": DURATION}),
    "placement": Struct({"constraints": STRS, "preferences": Seq(Struct({"spread": STR})),
                         "max_replicas_per_node": Int(0)}),
    "update_config": UPDATE_CONFIG, "rollback_config": UPDATE_CONFIG,
})

SERVICE_NETWORKS = Either(
    Seq(Str(), unique=True),
    Names(Struct({"aliases": STRS, "ipv4_address": Fmt(Str(), lambda v: syntax.check_ip(
        v, "ipv4_address", v)), "ipv6_address": Fmt(Str(), lambda v: syntax.check_ip(
            v, "ipv6_address", v)), "priority": Int(), "mac_address": STR,
        "link_local_ips": STRS, "driver_opts": OPEN, "gw_priority": Int()}), "network"),
    expect="a list of network names or a mapping")

DEPENDS_ON = Either(
    Seq(Str(), unique=True),
    Names(Struct({"condition": Str(fmt=_condition), "restart": Bool(), "required": Bool()}),
          "service", nullable=False),
    expect="a list of service names or a mapping")

ULIMITS = Names(Either(Int(), Struct({"soft": Int(), "hard": Int()}, required=("soft", "hard")),
                       expect="a number or a soft/hard mapping"), "ulimit", nullable=False)

LOGGING = Struct({"driver": STR, "options": ListOrDict()})

EXTENDS = Either(Str(), Struct({"service": STR, "file": STR}, required=("service",)),
                 expect="a service name or a mapping")

EXTRA_HOSTS = Either(Seq(Fmt(Str(), syntax.parse_extra_host)), ListOrDict(),
                     expect="a list of HOST:IP or a mapping")

IGNORED = ("blkio_config", "cpu_count", "cpu_percent", "cpu_rt_period", "cpu_rt_runtime",
           "credential_spec", "develop", "device_cgroup_rules", "isolation", "mac_address",
           "storage_opt", "external_links", "links", "volumes_from", "cgroup_parent",
           "runtime", "attach", "post_start", "pre_stop", "oom_kill_disable",
           "mem_swappiness", "dns_opt", "group_add", "userns_mode", "uts", "cgroup",
           "annotations", "label_file", "use_api_socket", "models", "provider", "gpus")

SERVICE = Struct({
    "image": STR, "build": BUILD,
    "command": Either(Str(), Seq(Str(numbers=True)), Null(), expect="a string or a list"),
    "entrypoint": Either(Str(), Seq(Str(numbers=True)), Null(), expect="a string or a list"),
    "environment": OPTS, "env_file": Either(Str(), Seq(Either(Str(), Struct(
        {"path": STR, "required": Bool(), "format": STR}, required=("path",)),
        expect="a path or a mapping")), expect="a path or a list of paths"),
    "ports": PORTS, "expose": Seq(Either(Str(), Int(), expect="a port")),
    "volumes": VOLUMES, "tmpfs": STR_OR_STRS, "networks": SERVICE_NETWORKS,
    "network_mode": STR, "depends_on": DEPENDS_ON, "healthcheck": HEALTHCHECK,
    "restart": Str(fmt=_restart),
    "deploy": DEPLOY, "init": Bool(), "user": Str(numbers=True), "working_dir": STR,
    "read_only": Bool(), "cap_add": STRS, "cap_drop": STRS, "security_opt": STRS,
    "labels": OPTS, "logging": LOGGING, "stop_signal": Str(numbers=True),
    "stop_grace_period": DURATION, "hostname": STR, "domainname": STR,
    "extra_hosts": EXTRA_HOSTS, "dns": STR_OR_STRS, "dns_search": STR_OR_STRS,
    "profiles": Seq(Str(), unique=True), "extends": EXTENDS, "secrets": FILE_REFS,
    "configs": FILE_REFS, "container_name": STR, "privileged": Bool(), "tty": Bool(),
    "stdin_open": Bool(), "pull_policy": Str(choices=("always", "never", "missing",
                                                      "if_not_present", "build", "daily",
                                                      "weekly")),
    "platform": STR, "scale": Int(0), "sysctls": OPTS, "ulimits": ULIMITS,
    "devices": Seq(Either(Str(), ANY_MAP, expect="a device")), "shm_size": SIZE,
    "mem_limit": SIZE, "mem_reservation": SIZE, "memswap_limit": Either(SIZE, Int(-1),
                                                                       expect="a size"),
    "cpus": Either(Num(), Str(), expect="a number"), "cpu_shares": Int(0), "cpu_quota": Int(),
    "cpu_period": Int(), "cpuset": STR, "pids_limit": Int(), "oom_score_adj": Int(-1000),
    "ipc": STR, "pid": STR,
    **{key: AnyValue() for key in IGNORED},
    # ignored as well, but merged as lists or mappings, so their shape matters
    "annotations": OPTS, "links": STRS, "external_links": STRS, "volumes_from": STRS,
    "dns_opt": STRS, "group_add": Seq(Str(numbers=True)), "device_cgroup_rules": STRS,
})


IPAM = Struct({"driver": STR, "config": Seq(Struct({
    "subnet": STR, "ip_range": STR, "gateway": STR, "aux_addresses": OPEN})),
    "options": OPEN})

EXTERNAL = Either(Bool(), Struct({"name": STR}), expect="a boolean")

NETWORK = Struct({"name": STR, "driver": STR, "driver_opts": OPEN, "ipam": IPAM,
                  "external": EXTERNAL, "internal": Bool(), "attachable": Bool(),
                  "enable_ipv4": Bool(), "enable_ipv6": Bool(), "labels": OPTS})
VOLUME = Struct({"name": STR, "driver": STR, "driver_opts": OPEN, "external": EXTERNAL,
                 "labels": OPTS})
SECRET = Struct({"name": STR, "file": STR, "environment": STR, "external": EXTERNAL,
                 "labels": OPTS, "driver": STR, "driver_opts": OPEN, "template_driver": STR})
CONFIG = Struct({**SECRET.fields, "content": STR})

INCLUDE = Seq(Either(Str(), Struct({"path": STR_OR_STRS, "project_directory": STR,
                                    "env_file": STR_OR_STRS}, required=("path",)),
                     expect="a path or a mapping"))

TOP = Struct({
    "version": Either(Str(), Num(), expect="a string"), "name": STR, "include": INCLUDE,
    "services": Names(SERVICE, "service"), "networks": Names(NETWORK, "network"),
    "volumes": Names(VOLUME, "volume"), "secrets": Names(SECRET, "secret"),
    "configs": Names(CONFIG, "config"),
})


def check_file(data: Any, file: str) -> None:
    """Check one (interpolated) compose file against the spec's structure."""
    if not isinstance(data, dict):
        raise ComposeError(file, "", "the top level must be a mapping")
    TOP.check(data, file, ())
