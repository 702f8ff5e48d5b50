"""`portside compose`: multi-container applications from compose files, as `docker compose`.

Options before the sub-command select the project (-f, -p, --profile, --env-file,
--project-directory); the project is loaded (and fully validated) before anything runs.
Running verbs talk to the daemon through `portside.compose.orchestrate`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

CTX = {"help_option_names": ["-h", "--help"]}


def _options(ctx: click.Context, services: tuple[str, ...] = ()) -> Any:
    from portside.compose.project import Options

    obj = ctx.find_root().obj if ctx.find_root().obj else ctx.obj
    base: Options = ctx.obj if isinstance(ctx.obj, Options) else obj
    return Options(files=base.files, project_name=base.project_name,
                   project_directory=base.project_directory, env_files=base.env_files,
                   profiles=base.profiles, services=services, environ=base.environ)


def load(ctx: click.Context, services: tuple[str, ...] = ()) -> Any:
    """The loaded project (services named on the command line are enabled)."""
    from portside.compose.project import load_project

    return load_project(_options(ctx, services))


@click.group(context_settings=CTX)
@click.option("-f", "--file", "files", multiple=True, help="Compose file (repeatable).")
@click.option("-p", "--project-name", help="Project name.")
@click.option("--project-directory", help="Working directory (default: the first file's).")
@click.option("--profile", "profiles", multiple=True, help="Enable a profile (repeatable).")
@click.option("--env-file", "env_files", multiple=True, help="Variables file (repeatable).")
@click.pass_context
def compose(ctx: click.Context, files: tuple[str, ...], project_name: str | None,
            project_directory: str | None, profiles: tuple[str, ...],
            env_files: tuple[str, ...]) -> None:
    """Define and run multi-container applications."""
    import os

    from portside.compose.project import Options

    ctx.obj = Options(files=files, project_name=project_name,
                      project_directory=project_directory, env_files=env_files,
                      profiles=profiles, environ=dict(os.environ))


@compose.command(context_settings=CTX)
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml")
@click.option("--services", is_flag=True, help="Print the service names, one per line.")
@click.option("--volumes", is_flag=True, help="Print the volume names, one per line.")
@click.option("--networks", is_flag=True, help="Print the network names, one per line.")
@click.option("--profiles", is_flag=True, help="Print the profile names, one per line.")
@click.option("--images", is_flag=True, help="Print the image of each service.")
@click.option("--hash", "hash_", help="Print the config hash of services ('*' for all).")
@click.option("-q", "--quiet", is_flag=True, help="Only validate; print nothing.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file.")
@click.pass_context
def config(ctx: click.Context, fmt: str, services: bool, volumes: bool, networks: bool,
           profiles: bool, images: bool, hash_: str | None, quiet: bool,
           output: str | None) -> None:
    """Print the resolved, normalised compose model."""
    from portside.compose.model import to_dict

    project = load(ctx)
    if quiet:
        return
    lines: list[str] | None = None
    if services:
        lines = list(project.services)
    elif volumes:
        lines = list(project.volumes)
    elif networks:
        lines = list(project.networks)
    elif profiles:
        every = [*project.services.values(), *project.disabled.values()]
        lines = sorted({p for s in every for p in s.profiles})
    elif images:
        from portside.compose.naming import image_name

        lines = [image_name(project, s) for s in project.services.values()]
    elif hash_:
        names = list(project.services) if hash_ == "*" else hash_.split(",")
        lines = [f"{n} {project.service(n).config_hash()}" for n in names]
    if lines is not None:
        text = "".join(line + "\n" for line in lines)
    elif fmt == "json":
        text = json.dumps(to_dict(project), indent=2) + "\n"
    else:
        import yaml

        text = yaml.safe_dump(to_dict(project), sort_keys=False, default_flow_style=False,
                              allow_unicode=True)
    if output:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
