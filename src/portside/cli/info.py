"""`portside info` and `portside version`: the daemon's figures, laid out as Docker does."""

from __future__ import annotations

import json
from typing import Any, cast

import click

from portside import __version__
from portside.cli.engine import engine

# -- rendering ---------------------------------------------------------------------------------


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.4g}GiB"


def _formatted(fmt: str, doc: dict[str, Any]) -> bool:
    """`--format json` or a `{{.Field}}` template; False when the table is wanted."""
    if fmt == "json":
        click.echo(json.dumps(doc))
        return True
    if fmt:
        from portside.cli.output import render

        click.echo(render(fmt, doc))
        return True
    return False


def _security_lines(options: list[str]) -> list[str]:
    """`name=seccomp,profile=builtin` -> `  seccomp` and `   Profile: builtin`."""
    out = []
    for opt in options:
        fields = dict(f.partition("=")[::2] for f in opt.split(","))
        out.append(f"  {fields.get('name', opt)}")
        out += [f"   {k.capitalize()}: {v}" for k, v in fields.items() if k != "name"]
    return out


def info_lines(doc: dict[str, Any]) -> list[str]:
    lines = [
        "Client:", f" Version:    {__version__}", " Context:    default", "",
        "Server:",
        f" Containers: {doc['Containers']}",
        f"  Running: {doc['ContainersRunning']}",
        f"  Paused: {doc['ContainersPaused']}",
        f"  Stopped: {doc['ContainersStopped']}",
        f" Images: {doc['Images']}",
        f" Server Version: {doc['ServerVersion']}",
        f" Storage Driver: {doc['Driver']}",
        *[f"  {k}: {v}" for k, v in doc.get("DriverStatus") or []],
        f" Logging Driver: {doc['LoggingDriver']}",
        f" Cgroup Driver: {doc['CgroupDriver']}",
        f" Cgroup Version: {doc['CgroupVersion']}",
        " Plugins:",
        *[f"  {kind}: {' '.join(names)}" for kind, names in (doc.get("Plugins") or {}).items()
          if names],
        f" Swarm: {(doc.get('Swarm') or {}).get('LocalNodeState', 'inactive')}",
        f" Runtimes: {' '.join(sorted(doc.get('Runtimes') or {}))}",
        f" Default Runtime: {doc['DefaultRuntime']}",
        f" Init Binary: {doc.get('InitBinary', '')}",
        " Security Options:",
        *_security_lines(doc.get("SecurityOptions") or []),
        f" Kernel Version: {doc['KernelVersion']}",
        f" Operating System: {doc['OperatingSystem']}",
        f" OSType: {doc['OSType']}",
        f" Architecture: {doc['Architecture']}",
        f" CPUs: {doc['NCPU']}",
        f" Total Memory: {_gib(int(doc['MemTotal']))}",
        f" Name: {doc['Name']}",
        f" ID: {doc['ID']}",
        f" Docker Root Dir: {doc['DockerRootDir']}",
        f" Debug Mode: {str(doc['Debug']).lower()}",
        f" Experimental: {str(doc['ExperimentalBuild']).lower()}",
        f" Live Restore Enabled: {str(doc.get('LiveRestoreEnabled', False)).lower()}",
    ]
    lines += [w for w in doc.get("Warnings") or []]
    return lines


def version_lines(doc: dict[str, Any]) -> list[str]:
    lines = ["Client:", f" Version:           {__version__}",
             f" API version:       {doc.get('ApiVersion', '')}", "",
             f"Server: {(doc.get('Platform') or {}).get('Name', '')}"]
    for comp in doc.get("Components") or []:
        lines.append(f" {comp['Name']}:")
        lines.append(f"  Version:          {comp['Version']}")
        for key, value in (comp.get("Details") or {}).items():
            lines.append(f"  {key + ':':<17} {value}")
    return lines


@click.command("info")
@click.option("-f", "--format", "fmt", default="", help="json, or a Go-like {{.Field}} template.")
def info(fmt: str) -> None:
    """Display system-wide information."""
    doc = cast(dict[str, Any], engine().system.info())
    if not _formatted(fmt, doc):
        click.echo("\n".join(info_lines(doc)))


@click.command("version")
@click.option("-f", "--format", "fmt", default="", help="json, or a Go-like {{.Field}} template.")
def version(fmt: str) -> None:
    """Show the portside version information (client and daemon)."""
    doc = cast(dict[str, Any], engine().system.version())
    if fmt == "json":
        click.echo(json.dumps({"Client": {"Version": __version__}, "Server": doc}))
        return
    if not _formatted(fmt, {"Client": {"Version": __version__}, "Server": doc}):
        click.echo("\n".join(version_lines(doc)))
