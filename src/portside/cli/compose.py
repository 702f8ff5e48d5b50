"""`portside compose`: multi-container applications from compose files, as `docker compose`.

Options before the sub-command select the project (-f, -p, --profile, --env-file,
--project-directory); the project is loaded (and fully validated) before anything runs.
Running verbs go to the engine (`portside.cli.engine`) through
`portside.compose.orchestrate`.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from portside.numbers import is_digits

if TYPE_CHECKING:  # the compose modules are imported by the verbs that need them
    from portside.compose.model import Project, Service
    from portside.compose.orchestrate import Compose
    from portside.compose.project import Options
    from portside.engine.interface import ContainerSummary

CTX = {"help_option_names": ["-h", "--help"]}


def _options(ctx: click.Context, services: tuple[str, ...] = ()) -> Options:
    from portside.compose.project import Options

    base = ctx.find_object(Options)
    assert base is not None  # set by the `compose` group
    return Options(files=base.files, project_name=base.project_name,
                   project_directory=base.project_directory, env_files=base.env_files,
                   profiles=base.profiles, services=services, environ=base.environ)


def load(ctx: click.Context, services: tuple[str, ...] = ()) -> Project:
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


def _say(message: str) -> None:
    click.echo(f" {message}", err=True)


def runner(ctx: click.Context, services: tuple[str, ...] = ()) -> Compose:
    """The project (loaded) and a Compose runner on the CLI's engine."""
    from portside.cli.engine import engine
    from portside.compose.orchestrate import Compose

    return Compose(load(ctx, services), engine(), _say)


def _scale(values: tuple[str, ...]) -> dict[str, int]:
    from portside.errors import InvalidArgument

    out = {}
    for item in values:
        name, eq, count = item.partition("=")
        if not eq or not is_digits(count):
            raise InvalidArgument(f"invalid --scale {item!r}: expected SERVICE=NUMBER")
        out[name] = int(count)
    return out


def _images(compose: Compose, services: list[Service], build: bool, no_build: bool,
            pull: str) -> None:
    from portside.compose import images

    images.prepare(compose, services, build, no_build, pull, say=_say)


@compose.command(context_settings=CTX)
@click.option("-d", "--detach", is_flag=True, help="Run in the background.")
@click.option("--build", is_flag=True, help="Build images before starting.")
@click.option("--no-build", is_flag=True, help="Do not build missing images.")
@click.option("--pull", type=click.Choice(["always", "missing", "never", "policy"]),
              default="policy", help="Pull images before starting.")
@click.option("--wait", is_flag=True, help="Wait until services are running/healthy (implies -d).")
@click.option("--wait-timeout", type=float, default=None, help="Seconds to wait at most.")
@click.option("--scale", "scale", multiple=True, help="SERVICE=NUMBER (repeatable).")
@click.option("--remove-orphans", is_flag=True, help="Remove containers of removed services.")
@click.option("--force-recreate", is_flag=True, help="Recreate even unchanged containers.")
@click.option("--no-recreate", is_flag=True, help="Keep existing containers as they are.")
@click.option("--no-start", is_flag=True, help="Create but do not start.")
@click.option("-t", "--timeout", type=int, default=None, help="Stop timeout (seconds).")
@click.argument("services", nargs=-1)
@click.pass_context
def up(ctx: click.Context, detach: bool, build: bool, no_build: bool, pull: str, wait: bool,
       wait_timeout: float | None, scale: tuple[str, ...], remove_orphans: bool,
       force_recreate: bool, no_recreate: bool, no_start: bool, timeout: int | None,
       services: tuple[str, ...]) -> None:
    """Create and start the services' containers (converging what exists)."""
    compose = runner(ctx, services)
    _images(compose, compose.selected(services), build, no_build, pull)
    compose.up(services, scale=_scale(scale), remove_orphans=remove_orphans,
               force_recreate=force_recreate, no_recreate=no_recreate, wait=wait,
               wait_timeout=wait_timeout, start=not no_start)
    if detach or wait or no_start:
        return
    from portside.compose.logs import follow

    try:
        follow(compose, [s.name for s in compose.selected(services)], follow_=True,
               until_exit=True)
    except KeyboardInterrupt:
        click.echo("Gracefully stopping... (press Ctrl+C again to force)", err=True)
        compose.stop(services, timeout)


@compose.command(context_settings=CTX)
@click.option("-v", "--volumes", is_flag=True, help="Also remove named volumes.")
@click.option("--remove-orphans", is_flag=True, help="Also remove containers of removed services.")
@click.option("-t", "--timeout", type=int, default=None, help="Stop timeout (seconds).")
@click.pass_context
def down(ctx: click.Context, volumes: bool, remove_orphans: bool, timeout: int | None) -> None:
    """Stop and remove the project's containers and networks (and volumes with -v)."""
    runner(ctx).down(volumes=volumes, remove_orphans=remove_orphans, timeout=timeout)


@compose.command(context_settings=CTX)
@click.option("-a", "--all", "show_all", is_flag=True, help="Also stopped containers.")
@click.option("-q", "--quiet", is_flag=True, help="Only ids.")
@click.option("--services", "only_services", is_flag=True, help="Only service names.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.argument("services", nargs=-1)
@click.pass_context
def ps(ctx: click.Context, show_all: bool, quiet: bool, only_services: bool, fmt: str,
       services: tuple[str, ...]) -> None:
    """List the project's containers."""
    from portside.cli.output import table
    from portside.compose import naming
    from portside.compose.orchestrate import name_of

    compose = runner(ctx)
    rows = [c for c in compose.containers(stopped=show_all)
            if not services or c.labels.get(naming.SERVICE) in services]
    if quiet:
        for c in rows:
            click.echo(c.id)
        return
    if only_services:
        for name in dict.fromkeys(c.labels.get(naming.SERVICE) for c in rows):
            click.echo(name)
        return
    out = [{"ID": c.id[:12], "Name": name_of(c), "Image": c.image, "Command": c.command,
            "Project": compose.project.name, "Service": c.labels.get(naming.SERVICE, ""),
            "State": c.state, "Status": c.status, "Ports": _ports(c)} for c in rows]
    if fmt == "json":  # one object per line, as `docker compose ps --format json`
        for r in out:
            click.echo(json.dumps(r))
        return
    table(["NAME", "IMAGE", "COMMAND", "SERVICE", "STATUS", "PORTS"],
          [[r["Name"], r["Image"], _short(r["Command"]), r["Service"], r["Status"], r["Ports"]]
           for r in out])


def _short(command: str) -> str:
    return json.dumps(command if len(command) <= 20 else command[:19] + "…",
                      ensure_ascii=False)


def _ports(c: ContainerSummary) -> str:
    items = []
    for p in c.ports:
        if p.public:
            items.append(f"{p.ip or '0.0.0.0'}:{p.public}->{p.private}/{p.protocol}")
        else:
            items.append(f"{p.private}/{p.protocol}")
    return ", ".join(dict.fromkeys(items))


@compose.command(context_settings=CTX)
@click.option("-f", "--follow", "follow_", is_flag=True, help="Follow log output.")
@click.option("-n", "--tail", default="all", help="Lines from the end of each log.")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps.")
@click.option("--no-log-prefix", is_flag=True, help="Do not prefix lines with the container.")
@click.argument("services", nargs=-1)
@click.pass_context
def logs(ctx: click.Context, follow_: bool, tail: str, timestamps: bool, no_log_prefix: bool,
         services: tuple[str, ...]) -> None:
    """Show the output of the services' containers."""
    from portside.compose.logs import follow

    compose = runner(ctx)
    follow(compose, list(services) or list(compose.project.services), follow_=follow_,
           tail=tail, timestamps=timestamps, prefix=not no_log_prefix)


def _container(compose: Compose, service: str, index: int) -> str:
    from portside.compose.orchestrate import name_of
    from portside.errors import NotFound

    compose.project.service(service)
    found = [c for c in compose.containers(service, stopped=False)
             if int(c.labels.get("com.docker.compose.container-number", 0)) == index]
    if not found:
        raise NotFound(f"service \"{service}\" is not running (no container number {index})")
    return name_of(found[0])


@compose.command("exec", context_settings={**CTX, "allow_interspersed_args": False})
@click.option("-d", "--detach", is_flag=True, help="Run the command in the background.")
@click.option("-T", "--no-TTY", "no_tty", is_flag=True, help="Do not allocate a TTY.")
@click.option("-e", "--env", multiple=True, help="Set environment variables.")
@click.option("-u", "--user", default="", help="Run as this user.")
@click.option("-w", "--workdir", default="", help="Working directory.")
@click.option("--privileged", is_flag=True, help="Extended privileges.")
@click.option("--index", type=int, default=1, help="Which replica (default 1).")
@click.argument("service")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def exec_(ctx: click.Context, detach: bool, no_tty: bool, env: tuple[str, ...], user: str,
          workdir: str, privileged: bool, index: int, service: str,
          command: tuple[str, ...]) -> None:
    """Run a command in a running service container."""
    from portside.cli.containers import exec_ as container_exec

    name = _container(runner(ctx), service, index)
    tty = not no_tty and sys.stdin.isatty() and sys.stdout.isatty()
    ctx.invoke(container_exec, detach=detach, interactive=not detach, tty=tty, env=env,
               user=user, workdir=workdir, privileged=privileged, container=name,
               command=command)


@compose.command(context_settings={**CTX, "allow_interspersed_args": False})
@click.option("-d", "--detach", is_flag=True, help="Run in the background; print the id.")
@click.option("--rm", is_flag=True, help="Remove the container when it exits.")
@click.option("-T", "--no-TTY", "no_tty", is_flag=True, help="Do not allocate a TTY.")
@click.option("-e", "--env", multiple=True, help="Set environment variables.")
@click.option("--name", default=None, help="Container name.")
@click.option("--no-deps", is_flag=True, help="Do not start the services it depends on.")
@click.option("--entrypoint", default=None, help="Override the entrypoint.")
@click.argument("service")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def run(ctx: click.Context, detach: bool, rm: bool, no_tty: bool, env: tuple[str, ...],
        name: str | None, no_deps: bool, entrypoint: str | None, service: str,
        command: tuple[str, ...]) -> None:
    """Run a one-off command in a new container of a service."""
    from portside.cli.engine import run_calls
    from portside.cli.runcore import attach_and_start, start_container

    compose = runner(ctx, (service,))
    svc = compose.project.service(service)
    deps = [d for d in svc.depends_on if d in compose.project.services]
    if deps and not no_deps:
        _images(compose, compose.selected(deps), False, False, "policy")
        compose.up(deps)
    _images(compose, [svc], False, False, "policy")
    tty = not no_tty and sys.stdin.isatty() and sys.stdout.isatty()
    cid = compose.one_off(svc, list(command) if command else None, name=name, env=list(env),
                          entrypoint=entrypoint, auto_remove=rm and not detach, tty=tty)
    calls = run_calls(compose.engine)
    if detach:
        start_container(calls, cid)
        click.echo(cid)
        return
    code = attach_and_start(calls, cid, tty, True, rm)
    sys.exit(code)


@compose.command(context_settings=CTX)
@click.argument("services", nargs=-1)
@click.pass_context
def top(ctx: click.Context, services: tuple[str, ...]) -> None:
    """The processes running in the services' containers."""
    from portside.cli.output import table
    from portside.compose.orchestrate import name_of

    compose = runner(ctx)
    for c in compose.containers(stopped=False):
        if services and c.labels.get("com.docker.compose.service") not in services:
            continue
        found = compose.engine.containers.top(c.id)
        click.echo(name_of(c))
        table(found.titles, found.processes)
        click.echo()


@compose.command(context_settings=CTX)
@click.option("--no-cache", is_flag=True, help="Do not use the build cache.")
@click.option("--pull", is_flag=True, help="Always pull newer base images.")
@click.option("--progress", default="auto", help="auto, plain, tty or quiet.")
@click.argument("services", nargs=-1)
@click.pass_context
def build(ctx: click.Context, no_cache: bool, pull: bool, progress: str,
          services: tuple[str, ...]) -> None:
    """Build the services' images."""
    from portside.compose import images

    project = load(ctx, services)
    chosen = [project.service(n) for n in services] or list(project.services.values())
    images.build(project, chosen, progress=progress, no_cache=no_cache, pull=pull, say=_say)


@compose.command(context_settings=CTX)
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.option("--ignore-buildable", is_flag=True, help="Skip services that have a build.")
@click.argument("services", nargs=-1)
@click.pass_context
def pull(ctx: click.Context, quiet: bool, ignore_buildable: bool,
         services: tuple[str, ...]) -> None:
    """Pull the services' images."""
    from portside.compose import images
    from portside.compose.naming import image_name

    project = load(ctx, services)
    chosen = [project.service(n) for n in services] or list(project.services.values())
    refs = [image_name(project, s) for s in chosen
            if s.image and not (ignore_buildable and s.build)]
    images.pull(sorted(set(refs)), quiet=quiet)


@compose.command(context_settings=CTX)
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.argument("services", nargs=-1)
@click.pass_context
def push(ctx: click.Context, quiet: bool, services: tuple[str, ...]) -> None:
    """Push the images of services that have a build section and an image name."""
    from portside.compose import images

    project = load(ctx, services)
    chosen = [project.service(n) for n in services] or list(project.services.values())
    images.push(sorted({s.image for s in chosen if s.build and s.image}), quiet=quiet)


@compose.command(context_settings=CTX)
@click.option("-t", "--timeout", type=int, default=None, help="Stop timeout (seconds).")
@click.argument("services", nargs=-1)
@click.pass_context
def stop(ctx: click.Context, timeout: int | None, services: tuple[str, ...]) -> None:
    """Stop the services' containers (dependents first)."""
    runner(ctx).stop(services, timeout)


@compose.command(context_settings=CTX)
@click.argument("services", nargs=-1)
@click.pass_context
def start(ctx: click.Context, services: tuple[str, ...]) -> None:
    """Start the services' existing containers (dependencies first)."""
    runner(ctx).start(services)


@compose.command(context_settings=CTX)
@click.option("-t", "--timeout", type=int, default=None, help="Stop timeout (seconds).")
@click.argument("services", nargs=-1)
@click.pass_context
def restart(ctx: click.Context, timeout: int | None, services: tuple[str, ...]) -> None:
    """Restart the services' containers."""
    runner(ctx).restart(services, timeout)
