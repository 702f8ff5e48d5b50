"""Stage 1: read compose files: YAML (1.2 scalars, anchors, merge keys, `!reset`,
`!override`), then, per file, `include` and `extends`.

`load_file` runs a file through read -> interpolate -> check (schema) -> include ->
extends, giving one merge-ready mapping whose relative paths are still relative to the
project directory, except those brought in by `include` or `extends` from another folder,
which are made absolute here (the spec resolves them against their own file).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portside.compose import envfile, spec, syntax
from portside.compose.errors import ComposeError
from portside.compose.interpolate import interpolate
from portside.compose.merge import merge_into, merge_service
from portside.compose.tags import Override, Reset

RESOURCES = ("services", "networks", "volumes", "secrets", "configs")


def display_path(path: Path) -> str:
    """How a file is named in messages: relative to the current directory when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _loader_class() -> Any:
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc, valid-type]
        """Safe loading with YAML 1.2 core scalars (no `yes`/`no` booleans, no `1:20`
        sexagesimals, no timestamps), duplicate-key errors and the merge tags."""

    Loader.yaml_implicit_resolvers = {}
    for tag, regexp, first in [
        ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
        ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$",
         "-+0123456789"),
        ("tag:yaml.org,2002:float", r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)"
         r"(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
         "-+0123456789."),
        ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
        ("tag:yaml.org,2002:merge", r"^(?:<<)$", "<"),
    ]:
        Loader.add_implicit_resolver(tag, re.compile(regexp), list(first))

    def construct_int(loader: Any, node: Any) -> int:
        text = loader.construct_scalar(node).lstrip("+")
        if text.startswith("0o"):
            return int(text[2:], 8)
        if re.fullmatch(r"0[0-7]+", text):  # `mode: 0440` is octal, as Compose reads it
            return int(text, 8)
        return int(text, 0) if text.startswith("0x") else int(text)

    def construct_mapping(loader: Any, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                raise _problem(key_node, "a mapping key must be a scalar")
            if key in seen:
                raise _problem(key_node, f"duplicate key \"{key}\"")
            seen.add(key)
        loader.flatten_mapping(node)
        return {loader.construct_object(k, deep=True): loader.construct_object(v, deep=True)
                for k, v in node.value}

    def construct_override(loader: Any, node: Any) -> Override:
        import yaml

        if isinstance(node, yaml.MappingNode):
            return Override(construct_mapping(loader, node))
        if isinstance(node, yaml.SequenceNode):
            return Override(loader.construct_sequence(node, deep=True))
        return Override(loader.construct_scalar(node))

    Loader.add_constructor("tag:yaml.org,2002:int", construct_int)
    Loader.add_constructor("tag:yaml.org,2002:map", construct_mapping)
    Loader.add_constructor("!override", construct_override)
    Loader.add_constructor("!reset", lambda loader, node: Reset())
    return Loader


class _Problem(Exception):
    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.line, self.column = line, column


def _problem(node: Any, message: str) -> _Problem:
    return _Problem(node.start_mark.line + 1, node.start_mark.column + 1, message)


_LOADER: Any = None


def parse_yaml(text: str, file: str) -> dict[str, Any]:
    """Stage 1 for one document: YAML text -> a mapping; errors give line and column."""
    import yaml

    global _LOADER
    if _LOADER is None:
        _LOADER = _loader_class()
    try:
        data = yaml.load(text, Loader=_LOADER)  # noqa: S506 - a SafeLoader subclass
    except _Problem as exc:
        raise ComposeError(file, f"line {exc.line} column {exc.column}", str(exc)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise ComposeError(file, where, f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ComposeError(file, "", f"invalid YAML: {exc}") from None
    if data is None:
        raise ComposeError(file, "", "the file is empty")
    if _expanded_size(data, {}) > MAX_VALUES:
        raise ComposeError(file, "", f"the file expands to more than {MAX_VALUES} values"
                           " through YAML aliases")
    if not isinstance(data, dict):
        raise ComposeError(file, "", "the top level must be a mapping")
    return data


MAX_VALUES = 1_000_000


def _expanded_size(node: Any, seen: dict[int, int]) -> int:
    """How many values the tree holds once aliases are expanded (shared nodes counted
    once per use, computed once each): guards against alias bombs."""
    if not isinstance(node, dict | list):
        return 1
    if id(node) not in seen:
        children = node.values() if isinstance(node, dict) else node
        seen[id(node)] = 1 + sum(_expanded_size(c, seen) for c in children)
    return seen[id(node)]


def read_file(path: Path, file: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ComposeError(file, "", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ComposeError(file, "", f"cannot read: {exc}") from None
    return parse_yaml(text, file)


@dataclass
class Context:
    """What loading needs besides the file: variables, warnings, files being loaded."""

    env: Mapping[str, str]
    warn: Callable[[str], None] = lambda message: None
    stack: list[Path] = field(default_factory=list)
    cache: dict[Path, dict[str, Any]] = field(default_factory=dict)


def load_file(path: Path, ctx: Context, origins: dict[str, str] | None = None
              ) -> dict[str, Any]:
    """read -> interpolate -> check -> include -> extends for one file."""
    path = path.absolute()
    file = display_path(path)
    if path in ctx.stack:
        chain = " -> ".join(display_path(p) for p in [*ctx.stack, path])
        raise ComposeError(file, "include", f"include cycle: {chain}")
    raw = read_file(path, file)
    data = interpolate(raw, ctx.env, file, warn=ctx.warn)
    spec.check_file(data, file)
    if origins is not None:
        record_origins(origins, data, file)
    ctx.stack.append(path)
    try:
        if "include" in data:
            _include(data, path, ctx, origins)
        for name in list(data.get("services") or {}):
            _extends(data, name, path, file, ctx, [])
    finally:
        ctx.stack.pop()
    result: dict[str, Any] = data
    return result


def record_origins(origins: dict[str, str], data: dict[str, Any], file: str) -> None:
    """Remember which file last set each resource and service key (for messages)."""
    for kind in RESOURCES:
        for name, body in (data.get(kind) or {}).items():
            origins.setdefault(f"{kind}.{name}", file)
            if isinstance(body, dict):
                for key in body:
                    origins[f"{kind}.{name}.{key}"] = file


def _include(data: dict[str, Any], path: Path, ctx: Context,
             origins: dict[str, str] | None) -> None:
    """Load each included project on its own and add its resources; clashes are errors."""
    file = display_path(path)
    for i, entry in enumerate(data.pop("include")):
        entry = {"path": entry} if isinstance(entry, str) else entry
        paths = [entry["path"]] if isinstance(entry["path"], str) else entry["path"]
        files = [(path.parent / os.path.expanduser(p)).absolute() for p in paths]
        project_dir = (path.parent / entry["project_directory"]).absolute() \
            if "project_directory" in entry else files[0].parent
        env_files = entry.get("env_file")
        env_paths = ([env_files] if isinstance(env_files, str) else env_files or [])
        env: dict[str, str] = {}
        for env_path in env_paths or [str(project_dir / ".env")]:
            found = envfile.read(path.parent / env_path, f"{file}: include[{i}]",
                                 lookup=os.environ, required=bool(env_paths))
            env.update({k: v for k, v in found.items() if v is not None})
        env.update(os.environ)
        sub = Context(env, ctx.warn, ctx.stack, ctx.cache)
        included: dict[str, Any] = {}
        for f in files:
            merge_into(included, rebase(load_file(f, sub, origins), project_dir))
        for kind in RESOURCES:
            for name, body in (included.get(kind) or {}).items():
                if not isinstance(data.get(kind), dict):
                    data[kind] = {}
                mine = data[kind]
                if name in mine and mine[name] != body:
                    raise ComposeError(file, f"{kind}.{name}", "conflicts with the same name"
                                       f" in included file {display_path(files[0])}")
                mine[name] = body


def _extends(data: dict[str, Any], name: str, path: Path, file: str, ctx: Context,
             chain: list[tuple[Path, str]]) -> dict[str, Any]:
    """Resolve `extends` of one service in place (recursively); returns the service."""
    services = data["services"]
    service = services[name] or {}
    if "extends" not in service:
        return service
    ref = service["extends"]
    ref = {"service": ref} if isinstance(ref, str) else ref
    if (path, name) in chain:
        names = " -> ".join(n for _, n in [*chain, (path, name)])
        raise ComposeError(file, f"services.{name}.extends", f"extends cycle: {names}")
    if "file" in ref:
        base_path = (path.parent / os.path.expanduser(ref["file"])).absolute()
        if base_path not in ctx.cache:
            ctx.cache[base_path] = interpolate(read_file(base_path, display_path(base_path)),
                                               ctx.env, display_path(base_path), warn=ctx.warn)
            spec.check_file(ctx.cache[base_path], display_path(base_path))
        base_data = ctx.cache[base_path]
    else:
        base_path, base_data = path, data
    base_file = display_path(base_path)
    if ref["service"] not in (base_data.get("services") or {}):
        raise ComposeError(file, f"services.{name}.extends", f"service \"{ref['service']}\""
                           f" not found in {base_file}")
    base = _extends(base_data, ref["service"], base_path, base_file, ctx,
                    [*chain, (path, name)])
    base = {k: v for k, v in base.items() if k != "extends"}
    if base_path.parent != path.parent:
        base = rebase_service(base, base_path.parent)
    local = {k: v for k, v in service.items() if k != "extends"}
    merged = merge_service(merge_service({}, base), local)
    services[name] = merged
    return merged


def _abs(base: Path, value: str) -> str:
    if "://" in value or value.startswith("git@"):
        return value
    return str((base / os.path.expanduser(value)).absolute()) if not value.startswith("/") \
        else value


def rebase_service(service: dict[str, Any], base: Path) -> dict[str, Any]:
    """A copy of a service whose relative paths (build context, env files, bind mounts)
    are made absolute against `base`."""
    out = dict(service)
    build = out.get("build")
    if isinstance(build, str):
        out["build"] = _abs(base, build)
    elif isinstance(build, dict):
        out["build"] = {**build, "context": _abs(base, build.get("context", "."))}
    env_file = out.get("env_file")
    if env_file is not None:
        items = [env_file] if isinstance(env_file, str) else env_file
        out["env_file"] = [_abs(base, e) if isinstance(e, str) else
                           {**e, "path": _abs(base, e["path"])} for e in items]
    if out.get("volumes"):
        vols = []
        for v in out["volumes"]:
            v = syntax.parse_volume(v) if isinstance(v, str) else dict(v)
            if v.get("type") == "bind" and "source" in v:
                v["source"] = _abs(base, v["source"])
            vols.append(v)
        out["volumes"] = vols
    return out


def rebase(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """A copy of a whole file's data with relative paths made absolute against `base`."""
    out = dict(data)
    if out.get("services"):
        out["services"] = {n: rebase_service(s or {}, base) for n, s in out["services"].items()}
    for kind in ("secrets", "configs"):
        if out.get(kind):
            out[kind] = {n: ({**b, "file": _abs(base, b["file"])} if b and "file" in b else b)
                         for n, b in out[kind].items()}
    return out
