"""Stage 5: the merged, validated data -> `model.Project` (see model.py for the shape).

Expands short syntaxes, resolves relative paths against the project directory, reads
`env_file`s into `environment`, fills defaults (the `default` network, replica counts,
secret targets under /run/secrets/) and names resources after the project
(`<project>_<name>`) unless they carry an explicit `name:` or are external.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from portside.compose import envfile, spec, syntax
from portside.compose.errors import ComposeError
from portside.compose.model import (
    Build,
    Dependency,
    Deploy,
    FileRef,
    Healthcheck,
    Mount,
    Network,
    Port,
    Project,
    Resources,
    Secret,
    Service,
    ServiceNetwork,
    Volume,
)


def _bool(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _strs(mapping: Mapping[str, Any]) -> dict[str, str]:
    return {k: _str(v) if v is not None else "" for k, v in mapping.items()}


def _command(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return shlex.split(value)
    return [_str(v) for v in value]


def _path(base: Path, value: str) -> str:
    return str((base / os.path.expanduser(value)).resolve()) if not value.startswith("/") \
        else os.path.normpath(value)


def _mode(value: Any) -> int | None:
    if value is None:
        return None
    return int(value, 8) if isinstance(value, str) else int(value)


class Normaliser:
    def __init__(self, data: dict[str, Any], name: str, project_dir: Path,
                 env: Mapping[str, str], warn: Callable[[str], None],
                 origins: Mapping[str, str]) -> None:
        self.data, self.name, self.dir, self.env, self.warn = data, name, project_dir, env, warn
        self.origins = origins

    def project(self, files: list[str], enabled: set[str]) -> Project:
        project = Project(name=self.name, working_dir=str(self.dir), config_files=files,
                          environment=dict(self.env))
        for name, body in (self.data.get("services") or {}).items():
            service = self.service(name, body or {})
            (project.services if name in enabled else project.disabled)[name] = service
        uses_default = any("default" in s.networks for s in project.services.values())
        for key, body in (self.data.get("networks") or {}).items():
            project.networks[key] = self.network(key, body or {})
        if uses_default and "default" not in project.networks:
            project.networks["default"] = Network(name=f"{self.name}_default")
        for key, body in (self.data.get("volumes") or {}).items():
            body = body or {}
            external, ext_name = self._external(body)
            project.volumes[key] = Volume(
                name=body.get("name") or ext_name or (key if external else f"{self.name}_{key}"),
                driver=body.get("driver"), driver_opts=_strs(body.get("driver_opts") or {}),
                external=external, labels=_strs(_map(body.get("labels"))))
        for kind in ("secrets", "configs"):
            for key, body in (self.data.get(kind) or {}).items():
                body = body or {}
                external, ext_name = self._external(body)
                getattr(project, kind)[key] = Secret(
                    name=body.get("name") or ext_name or (key if external
                                                          else f"{self.name}_{key}"),
                    file=_path(self.dir, body["file"]) if "file" in body else None,
                    environment=body.get("environment"), content=body.get("content"),
                    external=external)
        project.extensions = {k: v for k, v in self.data.items() if k.startswith("x-")}
        return project

    @staticmethod
    def _external(body: dict[str, Any]) -> tuple[bool, str | None]:
        ext = body.get("external")
        if isinstance(ext, dict):
            return True, ext.get("name")
        return _bool(ext), None

    def network(self, key: str, body: dict[str, Any]) -> Network:
        external, ext_name = self._external(body)
        return Network(
            name=body.get("name") or ext_name or (key if external else f"{self.name}_{key}"),
            driver=body.get("driver"), driver_opts=_strs(body.get("driver_opts") or {}),
            ipam=body.get("ipam"), external=external, internal=_bool(body.get("internal")),
            attachable=_bool(body.get("attachable")),
            enable_ipv6=_bool(body.get("enable_ipv6")), labels=_strs(_map(body.get("labels"))))

    def service(self, name: str, d: dict[str, Any]) -> Service:
        for key in d:
            if key in spec.IGNORED:
                self.warn(f"services.{name}.{key} is not supported by portside; ignored")
        s = Service(name=name, image=d.get("image"))
        if "build" in d:
            s.build = self.build(d["build"])
        for key in ("command", "entrypoint"):
            try:
                setattr(s, key, _command(d.get(key)))
            except ValueError as exc:
                raise ComposeError(self.origins.get(f"services.{name}.{key}", ""),
                                   f"services.{name}.{key}",
                                   f"invalid {key} \"{d[key]}\": {str(exc).lower()}") from None
        s.environment = self.environment(name, d)
        s.ports = [Port(**p) for p in d.get("ports", [])]
        s.expose = [_str(e) for e in d.get("expose", [])]
        s.volumes = [self.mount(v) for v in d.get("volumes", [])]
        s.tmpfs = [_str(t) for t in d.get("tmpfs", [])]
        s.network_mode = d.get("network_mode")
        nets = d.get("networks") or ({} if s.network_mode else {"default": None})
        s.networks = {n: ServiceNetwork(aliases=list(v.get("aliases", [])),
                                        ipv4_address=v.get("ipv4_address"),
                                        ipv6_address=v.get("ipv6_address"),
                                        priority=int(v["priority"]) if "priority" in v
                                        else None)
                      if v else ServiceNetwork() for n, v in nets.items()}
        s.depends_on = {n: Dependency(condition=v.get("condition", "service_started"),
                                      restart=_bool(v.get("restart")),
                                      required=_bool(v.get("required", True)))
                        for n, v in d.get("depends_on", {}).items()}
        if "healthcheck" in d:
            s.healthcheck = self.healthcheck(d["healthcheck"])
        s.restart = d.get("restart")
        s.deploy = self.deploy(d)
        if "init" in d:
            s.init = _bool(d["init"])
        for key in ("user", "working_dir", "stop_signal", "hostname", "domainname",
                    "container_name", "pull_policy", "platform", "ipc", "pid"):
            if key in d:
                setattr(s, key, _str(d[key]))
        for key in ("read_only", "privileged", "tty", "stdin_open"):
            setattr(s, key, _bool(d.get(key, False)))
        for key in ("cap_add", "cap_drop", "security_opt", "dns", "dns_search", "profiles"):
            setattr(s, key, [_str(v) for v in d.get(key, [])])
        s.labels = _strs(d.get("labels", {}))
        if "logging" in d:
            s.logging = {**d["logging"], "options": _strs(_map(d["logging"].get("options")))}
        if "stop_grace_period" in d:
            s.stop_grace_period = syntax.parse_duration(d["stop_grace_period"])
        s.extra_hosts = dict(d.get("extra_hosts", {}))
        s.secrets = [self.ref(r, "/run/secrets/") for r in d.get("secrets", [])]
        s.configs = [self.ref(r, "/") for r in d.get("configs", [])]
        s.sysctls = _strs(d.get("sysctls", {}))
        s.ulimits = {k: ({"soft": int(v), "hard": int(v)} if not isinstance(v, dict)
                         else {"soft": int(v["soft"]), "hard": int(v["hard"])})
                     for k, v in (d.get("ulimits") or {}).items()}
        s.devices = list(d.get("devices", []))
        if "shm_size" in d:
            s.shm_size = syntax.parse_bytes(d["shm_size"])
        for key in ("cpu_shares", "oom_score_adj"):
            if key in d:
                setattr(s, key, int(d[key]))
        s.extensions = {k: v for k, v in d.items() if k.startswith("x-")}
        return s

    def build(self, value: dict[str, Any]) -> Build:
        b = Build(context=_path(self.dir, value.get("context", ".")))
        if value.get("dockerfile"):
            b.dockerfile = value["dockerfile"]
        b.dockerfile_inline = value.get("dockerfile_inline")
        b.args = {k: _str(v) if v is not None else self.env.get(k)
                  for k, v in (value.get("args") or {}).items()}
        b.target, b.network = value.get("target"), value.get("network")
        b.labels = _strs(value.get("labels") or {})
        b.secrets = [self.ref({"source": r} if isinstance(r, str) else r, "/run/secrets/")
                     for r in value.get("secrets", [])]
        b.no_cache, b.pull = _bool(value.get("no_cache")), _bool(value.get("pull"))
        b.tags = list(value.get("tags", []))
        hosts = value.get("extra_hosts") or {}
        b.extra_hosts = hosts if isinstance(hosts, dict) else \
            dict(syntax.parse_extra_host(h) for h in hosts)
        return b

    def environment(self, name: str, d: dict[str, Any]) -> dict[str, str | None]:
        env: dict[str, str | None] = {}
        for item in d.get("env_file", []):
            item = {"path": item} if isinstance(item, str) else item
            path = Path(_path(self.dir, item["path"]))
            file = self.origins.get(f"services.{name}.env_file", "")
            env.update(envfile.read(path, f"{file}: services.{name}.env_file" if file else
                                    f"services.{name}.env_file",
                                    lookup=self.env, required=_bool(item.get("required", True))))
        for key, value in d.get("environment", {}).items():
            env[key] = _str(value) if value is not None else None
        return {k: (v if v is not None else self.env.get(k)) for k, v in env.items()}

    def mount(self, v: dict[str, Any]) -> Mount:
        m = Mount(type=v["type"], target=v["target"], source=v.get("source"),
                  read_only=_bool(v.get("read_only")), bind=v.get("bind"),
                  volume=v.get("volume"), consistency=v.get("consistency"))
        if m.type == "bind" and m.source:
            m.source = _path(self.dir, m.source)
        if v.get("tmpfs"):
            tmpfs = dict(v["tmpfs"])
            if "size" in tmpfs:
                tmpfs["size"] = syntax.parse_bytes(tmpfs["size"])
            m.tmpfs = tmpfs
        return m

    @staticmethod
    def ref(r: dict[str, Any], base: str) -> FileRef:
        target = r.get("target") or r["source"]
        if not target.startswith("/"):
            target = base + target
        return FileRef(source=r["source"], target=target,
                       uid=_str(r["uid"]) if "uid" in r else None,
                       gid=_str(r["gid"]) if "gid" in r else None, mode=_mode(r.get("mode")))

    @staticmethod
    def healthcheck(h: dict[str, Any]) -> Healthcheck:
        test = h.get("test")
        out = Healthcheck(disable=_bool(h.get("disable")))
        if isinstance(test, str):
            out.test = ["CMD-SHELL", test]
        elif test is not None:
            out.test = [_str(t) for t in test]
        if out.test == ["NONE"]:
            out.disable = True
        for key in ("interval", "timeout", "start_period", "start_interval"):
            if key in h:
                setattr(out, key, syntax.parse_duration(h[key]))
        if "retries" in h:
            out.retries = int(h["retries"])
        return out

    @staticmethod
    def deploy(d: dict[str, Any]) -> Deploy:
        dep = d.get("deploy") or {}
        replicas = d.get("scale", dep.get("replicas", 1))
        out = Deploy(replicas=int(replicas), restart_policy=dep.get("restart_policy"),
                     labels=_strs(_map(dep.get("labels"))), mode=dep.get("mode"),
                     endpoint_mode=dep.get("endpoint_mode"),
                     update_config=dep.get("update_config"),
                     rollback_config=dep.get("rollback_config"),
                     placement=dep.get("placement"))
        res = dep.get("resources") or {}
        for key in ("limits", "reservations"):
            r = res.get(key) or {}
            found = Resources(
                cpus=float(r["cpus"]) if "cpus" in r else None,
                memory=syntax.parse_bytes(r["memory"]) if "memory" in r else None,
                pids=int(r["pids"]) if "pids" in r else None)
            if key == "limits":  # the service-level shorthands fill the same limits
                if found.cpus is None and "cpus" in d:
                    found.cpus = float(d["cpus"])
                if found.memory is None and "mem_limit" in d:
                    found.memory = syntax.parse_bytes(d["mem_limit"])
                if found.pids is None and "pids_limit" in d:
                    found.pids = int(d["pids_limit"])
            if found != Resources():
                setattr(out.resources, key, found)
        return out


def _map(value: Any) -> dict[str, Any]:
    from portside.compose.merge import as_mapping

    return as_mapping(value)


def normalise(data: dict[str, Any], name: str, project_dir: Path, env: Mapping[str, str],
              files: list[str], enabled: set[str] | None = None,
              warn: Callable[[str], None] = lambda m: None,
              origins: Mapping[str, str] | None = None) -> Project:
    """Build the Project; `enabled` services (default: all) go to `services`, the rest
    (turned off by profiles) to `disabled`."""
    if enabled is None:
        enabled = set(data.get("services") or {})
    try:
        return Normaliser(data, name, project_dir, env, warn, origins or {}).project(
            files, enabled)
    except ValueError as exc:  # a value the schema let through but cannot be used
        from portside.compose.loader import display_path

        raise ComposeError(display_path(Path(files[0])) if files else "", "", str(exc)
                           ) from None
