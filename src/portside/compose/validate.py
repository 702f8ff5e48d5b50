"""Stage 4b: consistency of the merged model (each file's structure is `schema`'s job).

Checks that need the whole project: every service has an image or a build; depends_on
names defined services without cycles; networks, named volumes, secrets and configs that
services use are declared; secret and config sources exist (files, variables); no two
services publish the same host port. The first problem is raised as a ComposeError naming
the file that set the offending key (from `origins`), the key path and what is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from portside.compose.errors import ComposeError

ANY_IP = {None, "", "0.0.0.0", "::"}


class Checker:
    def __init__(self, data: dict[str, Any], origins: Mapping[str, str], project_dir: Path,
                 env: Mapping[str, str], stack: bool = False) -> None:
        self.data, self.origins, self.project_dir, self.env = data, origins, project_dir, env
        # a stack's replicas share published ports (the service balancer) and ignore
        # container_name, so the single-host limits on both do not apply
        self.stack = stack
        self.services: dict[str, dict[str, Any]] = data.get("services") or {}
        self.default_file = next(iter(origins.values()), "")

    def fail(self, key: str, suffix: str, message: str) -> None:
        """Raise for `key` (e.g. services.web.ports) with `suffix` (e.g. [1]) appended."""
        parts = key.split(".")
        file = self.default_file
        for n in range(len(parts), 0, -1):
            if ".".join(parts[:n]) in self.origins:
                file = self.origins[".".join(parts[:n])]
                break
        raise ComposeError(file, key + suffix, message)

    def run(self) -> None:
        for name, svc in self.services.items():
            self.service(name, svc or {})
        self.cycles()
        self.resources()
        self.ports()

    def service(self, name: str, svc: dict[str, Any]) -> None:
        key = f"services.{name}"
        if "image" not in svc and "build" not in svc:
            self.fail(key, "", 'needs "image" or "build"')
        for dep in svc.get("depends_on", {}):
            if dep == name:
                self.fail(f"{key}.depends_on", "", f"service \"{name}\" depends on itself")
            if dep not in self.services:
                self.fail(f"{key}.depends_on", "", f"undefined service \"{dep}\"")
        declared = self.data.get("networks") or {}
        mode = svc.get("network_mode")
        if mode and svc.get("networks"):
            self.fail(f"{key}.network_mode", "", '"network_mode" and "networks" cannot be'
                      " used together")
        if mode and mode.startswith("service:") and mode[8:] not in self.services:
            self.fail(f"{key}.network_mode", "", f"undefined service \"{mode[8:]}\"")
        for net in svc.get("networks", {}):
            if net != "default" and net not in declared:
                self.fail(f"{key}.networks", "", f"undefined network \"{net}\"")
        volumes = self.data.get("volumes") or {}
        for i, vol in enumerate(svc.get("volumes", [])):
            if vol.get("type") == "volume" and vol.get("source") and \
                    vol["source"] not in volumes:
                self.fail(f"{key}.volumes", f"[{i}]", f"undefined volume \"{vol['source']}\"")
            if vol.get("type") == "bind" and not vol.get("source"):
                self.fail(f"{key}.volumes", f"[{i}]", "a bind mount needs a source")
        for kind in ("secrets", "configs"):
            declared_refs = self.data.get(kind) or {}
            for i, ref in enumerate(svc.get(kind, [])):
                if ref["source"] not in declared_refs:
                    self.fail(f"{key}.{kind}", f"[{i}]",
                              f"undefined {kind[:-1]} \"{ref['source']}\"")
        build = svc.get("build") or {}
        for i, ref in enumerate(build.get("secrets") or []):
            source = ref if isinstance(ref, str) else ref["source"]
            if source not in (self.data.get("secrets") or {}):
                self.fail(f"{key}.build.secrets", f"[{i}]", f"undefined secret \"{source}\"")
        replicas = svc.get("scale", (svc.get("deploy") or {}).get("replicas", 1))
        if "container_name" in svc and int(replicas) > 1 and not self.stack:
            self.fail(f"{key}.container_name", "", "a fixed container name cannot be used"
                      f" with {replicas} replicas")

    def cycles(self) -> None:
        state: dict[str, int] = {}  # 1 = visiting, 2 = done

        def visit(name: str, trail: list[str]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                cycle = trail[trail.index(name):] + [name]
                self.fail(f"services.{cycle[0]}.depends_on", "",
                          "dependency cycle: " + " -> ".join(cycle))
            state[name] = 1
            for dep in sorted((self.services[name] or {}).get("depends_on", {})):
                visit(dep, [*trail, name])
            state[name] = 2

        for name in sorted(self.services):
            visit(name, [])

    def resources(self) -> None:
        for kind in ("secrets", "configs"):
            for name, body in (self.data.get(kind) or {}).items():
                body = body or {}
                key = f"{kind}.{name}"
                sources = [s for s in ("file", "environment", "external", "content")
                           if body.get(s) not in (None, False)]
                if len(sources) != 1:
                    self.fail(key, "", 'needs exactly one of "file", "environment"'
                              + (', "content"' if kind == "configs" else "")
                              + ' or "external"')
                if "file" in body:
                    path = self.project_dir / Path(body["file"]).expanduser()
                    if not path.is_file():
                        self.fail(f"{key}.file", "", f"file not found: {body['file']}")
                if "environment" in body and body["environment"] not in self.env:
                    self.fail(f"{key}.environment", "",
                              f"variable {body['environment']} is not set")

    def ports(self) -> None:
        seen: dict[tuple[int, str], list[tuple[str, str | None]]] = {}
        for name, svc in self.services.items():
            svc = svc or {}
            replicas = int(svc.get("scale", (svc.get("deploy") or {}).get("replicas", 1)))
            for i, port in enumerate(svc.get("ports", [])):
                published = port.get("published")
                if not published:
                    continue
                lo, _, hi = published.partition("-")
                if hi:
                    continue  # a range: the engine picks a free port from it
                proto, ip = port.get("protocol", "tcp"), port.get("host_ip")
                if replicas > 1 and not self.stack:
                    self.fail(f"services.{name}.ports", f"[{i}]", f"port {lo}/{proto} cannot"
                              f" be published by {replicas} replicas; use a range")
                for other, other_ip in seen.get((int(lo), proto), []):
                    if ip in ANY_IP or other_ip in ANY_IP or ip == other_ip:
                        who = f"service \"{other}\"" if other != name else "this service"
                        self.fail(f"services.{name}.ports", f"[{i}]",
                                  f"port {lo}/{proto} is already published by {who}")
                seen.setdefault((int(lo), proto), []).append((name, ip))


def check_project(data: dict[str, Any], origins: Mapping[str, str], project_dir: Path,
                  env: Mapping[str, str], stack: bool = False) -> None:
    """Validate a merged project (`stack`: for `stack deploy`); raises ComposeError at the
    first problem."""
    Checker(data, origins, project_dir, env, stack).run()
