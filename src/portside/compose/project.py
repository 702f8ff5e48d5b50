"""Load a project: find its files, its variables, its name and active profiles, and run
the stages (loader -> interpolate -> schema -> merge -> validate -> normalise).

Project name: `-p`, else `COMPOSE_PROJECT_NAME`, else the top-level `name:`, else the
project directory's name (lower-cased, other characters dropped). Variables: the
environment wins over `--env-file` files (default: `.env` in the project directory).
Profiles: `--profile` or `COMPOSE_PROFILES`; services without profiles are always on,
`*` turns every profile on, and services named on the command line are turned on.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portside.compose import envfile
from portside.compose.errors import ComposeError
from portside.compose.loader import Context, display_path, load_file
from portside.compose.merge import merge
from portside.compose.model import Project
from portside.compose.normalise import normalise
from portside.compose.validate import check_project

DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
OVERRIDE_FILES = ("compose.override.yaml", "compose.override.yml",
                  "docker-compose.override.yaml", "docker-compose.override.yml")
PROJECT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


@dataclass
class Options:
    """What the command line says about the project."""

    files: Sequence[str] = ()
    project_name: str | None = None
    project_directory: str | None = None
    env_files: Sequence[str] = ()
    profiles: Sequence[str] = ()
    services: Sequence[str] = ()  # named on the command line: enabled whatever profiles
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    warn: Callable[[str], None] = lambda message: print(f"WARN: {message}", file=sys.stderr)
    stack: bool = False  # loaded for `stack deploy` (replicas share published ports)


def find_files(opts: Options) -> list[Path]:
    """-f files, else COMPOSE_FILE, else compose.yaml (and its override) found in the
    current directory or the nearest parent that has one."""
    if opts.files:
        return [Path(f).absolute() for f in opts.files]
    if env := opts.environ.get("COMPOSE_FILE"):
        sep = opts.environ.get("COMPOSE_PATH_SEPARATOR", os.pathsep)
        return [Path(f).absolute() for f in env.split(sep) if f]
    here = Path.cwd()
    for folder in [here, *here.parents]:
        for name in DEFAULT_FILES:
            if (folder / name).is_file():
                found = [folder / name]
                for over in OVERRIDE_FILES:
                    if (folder / over).is_file():
                        found.append(folder / over)
                        break
                return found
    raise ComposeError("", "", f"no compose file found in {here} or its parents (looked for"
                       f" {', '.join(DEFAULT_FILES)})")


def project_name_of(raw: str) -> str:
    """A directory name -> a valid project name (as Docker Compose normalises it)."""
    name = re.sub(r"[^a-z0-9_-]", "", raw.lower())
    return name.lstrip("_-") or "default"


def check_name(name: str, where: str) -> str:
    if not PROJECT_NAME.fullmatch(name):
        raise ComposeError("", "", f"invalid project name \"{name}\" ({where}): use lowercase"
                           " letters, digits, '_' and '-', starting with a letter or digit")
    return name


def variables(opts: Options, project_dir: Path) -> dict[str, str]:
    """The interpolation environment: env files first, the process environment over them."""
    env: dict[str, str] = {}
    if opts.env_files:
        paths = [(Path(f).absolute(), True) for f in opts.env_files]
    else:
        paths = [(project_dir / ".env", False)]
    for path, required in paths:
        found = envfile.read(path, display_path(path), lookup={**env, **opts.environ},
                             required=required)
        env.update({k: v for k, v in found.items() if v is not None})
    env.update(opts.environ)
    return env


def load_project(opts: Options) -> Project:
    """Run every loading stage; raises ComposeError (naming file and key) on bad input."""
    paths = find_files(opts)
    project_dir = Path(opts.project_directory).absolute() if opts.project_directory \
        else paths[0].parent
    env = variables(opts, project_dir)
    ctx = Context(env, opts.warn)
    origins: dict[str, str] = {}
    data = merge([load_file(p, ctx, origins) for p in paths])
    if opts.project_name:
        name = check_name(opts.project_name, "-p")
    elif env.get("COMPOSE_PROJECT_NAME"):
        name = check_name(env["COMPOSE_PROJECT_NAME"], "COMPOSE_PROJECT_NAME")
    elif data.get("name"):
        name = check_name(str(data["name"]), f"name: in {display_path(paths[0])}")
    else:
        name = project_name_of(project_dir.name)
    check_project(data, origins, project_dir, env, opts.stack)
    enabled = active_services(data, opts, env, origins)
    return normalise(data, name, project_dir, env, [str(p) for p in paths], enabled,
                     opts.warn, origins)


def active_services(data: dict[str, Any], opts: Options, env: Mapping[str, str],
                    origins: Mapping[str, str]) -> set[str]:
    """The services the active profiles (and the command line) turn on."""
    services: dict[str, dict[str, Any]] = data.get("services") or {}
    profiles = set(opts.profiles) or {p for p in env.get("COMPOSE_PROFILES", "").split(",") if p}
    for name in opts.services:
        if name not in services:
            raise ComposeError("", "", f"no such service: {name}")
    enabled = {n for n, s in services.items()
               if not (s or {}).get("profiles") or "*" in profiles
               or profiles & set((s or {}).get("profiles") or [])} | set(opts.services)
    todo = list(enabled)
    while todo:  # a named service brings the services it depends on
        name = todo.pop()
        for dep, cond in ((services[name] or {}).get("depends_on") or {}).items():
            if dep in enabled:
                continue
            if name in opts.services:
                enabled.add(dep)
                todo.append(dep)
            elif cond.get("required", True):
                needed = ", ".join((services[dep] or {}).get("profiles") or [])
                raise ComposeError(origins.get(f"services.{name}", ""),
                                   f"services.{name}.depends_on",
                                   f"service \"{dep}\" is disabled by its profiles; enable one"
                                   f" of them with --profile ({needed})")
    return enabled
