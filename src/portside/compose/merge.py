"""Stage 3: merge compose files (and `extends` bases) by the Compose spec's merge rules.

Mappings merge key by key, the later file winning for scalars. Sequences append, except
`command`, `entrypoint` and `healthcheck.test`, which are replaced. `ports`, `volumes`,
`secrets` and `configs` are unique by their key ({host_ip, target, published, protocol},
target, target, target): a later entry with the same key replaces the earlier one.
`environment`, `labels`, `args`, `sysctls`, `extra_hosts`, `depends_on` and `networks` may
be written as lists or mappings and merge as mappings. `!reset` removes a value,
`!override` replaces it whole.

Merging also canonicalises those collections (lists of long-syntax ports and volumes,
mappings for the others) so that later stages see one shape, even for a single file.
"""

from __future__ import annotations

from typing import Any

from portside.compose import syntax
from portside.compose.tags import Override, Reset

REPLACED = {"command", "entrypoint"}
MAPPINGS = {"environment", "labels", "sysctls", "annotations", "extra_hosts"}
LISTS = {"dns", "dns_search", "tmpfs", "env_file", "cap_add", "cap_drop", "security_opt",
         "expose", "profiles", "devices", "dns_opt", "group_add", "links", "external_links",
         "volumes_from", "device_cgroup_rules"}
RESOURCES = ("networks", "volumes", "secrets", "configs")


def as_mapping(value: Any, sep: str = "=") -> dict[str, Any]:
    """`[K=V, K]` or `{K: V}` -> `{K: V}` (a bare `K` maps to None)."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    out: dict[str, Any] = {}
    for item in value:
        key, found, val = str(item).partition(sep)
        out[key] = val if found else None
    return out


def _hosts(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    return dict(syntax.parse_extra_host(h) for h in value or [])


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _ports(value: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in value or []:
        if isinstance(p, dict):
            out.append({"protocol": "tcp", "mode": "ingress", **p,
                        **({"published": str(p["published"])}
                           if p.get("published") is not None else {}),
                        "target": int(p["target"])})
        else:
            out.extend(syntax.parse_port(p))
    return out


def _volumes(value: Any) -> list[dict[str, Any]]:
    return [syntax.parse_volume(v) if isinstance(v, str) else dict(v) for v in value or []]


def _refs(value: Any) -> list[dict[str, Any]]:
    return [{"source": v} if isinstance(v, str) else dict(v) for v in value or []]


def _ref_target(ref: dict[str, Any]) -> str:
    return str(ref.get("target") or ref["source"])


def _port_key(p: dict[str, Any]) -> tuple[Any, ...]:
    return (p.get("host_ip"), p["target"], p.get("published"), p.get("protocol", "tcp"))


def _unique(base: list[dict[str, Any]], extra: list[dict[str, Any]], key: Any
            ) -> list[dict[str, Any]]:
    out = list(base)
    for item in extra:
        k = key(item)
        out = [o for o in out if key(o) != k]
        out.append(item)
    return out


def _depends(value: Any) -> dict[str, Any]:
    if isinstance(value, list):
        return {n: {"condition": "service_started", "required": True} for n in value}
    return {n: {"condition": "service_started", "required": True, **(d or {})}
            for n, d in (value or {}).items()}


def _networks(value: Any) -> dict[str, Any]:
    if isinstance(value, list):
        return {n: None for n in value}
    return dict(value or {})


CANON = {
    "ports": (_ports, _port_key), "volumes": (_volumes, lambda v: v["target"]),
    "secrets": (_refs, _ref_target), "configs": (_refs, _ref_target),
}


def merge_service(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge one service definition over another (also used by `extends`)."""
    out = canonical(base)
    for key, value in override.items():
        if isinstance(value, Reset):
            out.pop(key, None)
        elif isinstance(value, Override):
            out[key] = canonical({key: value.value})[key]
        elif key in REPLACED:
            out[key] = value
        elif key in CANON:
            parse, unique = CANON[key]
            out[key] = _unique(out.get(key, []), parse(value), unique)
        elif key in MAPPINGS:
            conv = _hosts if key == "extra_hosts" else as_mapping
            out[key] = {**out.get(key, {}), **conv(value)}
        elif key == "depends_on":
            merged = dict(out.get(key, {}))
            for name, dep in _depends(value).items():
                merged[name] = {**merged.get(name, {}), **dep}
            out[key] = merged
        elif key == "networks":
            merged = dict(out.get(key, {}))
            for name, net in _networks(value).items():
                old = merged.get(name)
                merged[name] = _deep(old, net) if isinstance(old, dict) and net else \
                    (net if net is not None else old)
            out[key] = merged
        elif key in LISTS:
            out[key] = [*out.get(key, []), *as_list(value)]
        elif key == "build":
            out[key] = _build(_deep(_build(out.get(key)), _build(value)))
        elif key == "healthcheck" and isinstance(value, dict):
            merged = _deep(out.get(key) or {}, {k: v for k, v in value.items() if k != "test"})
            if "test" in value:
                merged["test"] = value["test"]
            out[key] = merged
        else:
            out[key] = _deep(out.get(key), value)
    return out


def _build(value: Any) -> Any:
    if value is None:
        return None
    build = {"context": value} if isinstance(value, str) else dict(value)
    for key in ("args", "labels", "additional_contexts"):
        if key in build:
            build[key] = as_mapping(build[key])
    return build


def canonical(service: dict[str, Any]) -> dict[str, Any]:
    """A service with its collections in one shape (see the module docstring)."""
    out: dict[str, Any] = {}
    for key, value in (service or {}).items():
        if isinstance(value, Override | Reset):
            value = None if isinstance(value, Reset) else value.value
            if value is None:
                continue
        if key in CANON:
            out[key] = _unique([], CANON[key][0](value), CANON[key][1])
        elif key in MAPPINGS:
            out[key] = _hosts(value) if key == "extra_hosts" else as_mapping(value)
        elif key == "depends_on":
            out[key] = _depends(value)
        elif key == "networks":
            out[key] = _networks(value)
        elif key in LISTS:
            out[key] = as_list(value)
        elif key == "build":
            out[key] = _build(value)
        else:
            out[key] = value
    return out


def _deep(base: Any, override: Any) -> Any:
    """Mappings merge recursively; anything else is replaced; tags apply."""
    if isinstance(override, Override):
        return override.value
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for k, v in override.items():
            if isinstance(v, Reset):
                out.pop(k, None)
            elif isinstance(v, list) and isinstance(out.get(k), list):
                out[k] = [*out[k], *v]
            else:
                out[k] = _deep(out.get(k), v)
        return out
    return override


def merge_into(target: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """Merge one file's (loaded) data into `target` in place; returns target."""
    for key, value in data.items():
        if isinstance(value, Reset):
            target.pop(key, None)
        elif key == "services":
            services = target.setdefault("services", {})
            for name, body in (value or {}).items():
                if isinstance(body, Reset):
                    services.pop(name, None)
                elif isinstance(body, Override):
                    services[name] = canonical(body.value or {})
                else:
                    services[name] = merge_service(services.get(name) or {}, body or {})
        elif key in RESOURCES:
            resources = target.setdefault(key, {})
            for name, body in (value or {}).items():
                if isinstance(body, Reset):
                    resources.pop(name, None)
                else:
                    resources[name] = _deep(resources.get(name), body) if body is not None \
                        else resources.get(name)
        else:
            target[key] = _deep(target.get(key), value)
    return target


def merge(files: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge loaded files in order (the first is the base)."""
    out: dict[str, Any] = {}
    for data in files:
        merge_into(out, data)
    return out
