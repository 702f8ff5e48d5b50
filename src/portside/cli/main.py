"""Entry point of the `portside` command.

Sub-commands live in their own modules and are imported only when used, so
`portside --version` and the hot path of `run` stay fast.
"""

from __future__ import annotations

import portside.cli.fastrun  # noqa: F401  # isort: skip  (first: `run` without click or typing; exits)
import importlib
import sys
from typing import Any

import click

from portside import __version__
from portside.errors import PortsideError

# command name -> "module:attribute"; Docker's top-level shortcuts point at the same objects.
COMMANDS: dict[str, str] = {
    "build": "portside.cli.build:build",
    "builder": "portside.cli.build:builder",
    "image": "portside.cli.images:image",
    "images": "portside.cli.images:images",
    "history": "portside.cli.images:history",
    "tag": "portside.cli.images:tag",
    "rmi": "portside.cli.images:rmi",
    "save": "portside.cli.archive:save",
    "load": "portside.cli.archive:load",
    "system": "portside.cli.system:system",
    "registry": "portside.cli.registry:registry",
    "push": "portside.cli.registry:push",
    "pull": "portside.cli.registry:pull",
    "login": "portside.cli.registry:login",
    "logout": "portside.cli.registry:logout",
    "daemon": "portside.cli.daemon:daemon",
    "container": "portside.cli.ps:container",
    "run": "portside.cli.containers:run",
    "create": "portside.cli.containers:create",
    "start": "portside.cli.containers:start",
    "attach": "portside.cli.containers:attach",
    "exec": "portside.cli.containers:exec_",
    "ps": "portside.cli.ps:ps",
    "logs": "portside.cli.ps:logs",
    "inspect": "portside.cli.ps:inspect",
    "top": "portside.cli.ps:top",
    "stats": "portside.cli.ps:stats",
    "stop": "portside.cli.ps:stop",
    "kill": "portside.cli.ps:kill",
    "restart": "portside.cli.ps:restart",
    "pause": "portside.cli.ps:pause",
    "unpause": "portside.cli.ps:unpause",
    "wait": "portside.cli.ps:wait",
    "rm": "portside.cli.ps:rm",
    "events": "portside.cli.ps:events",
    "volume": "portside.cli.volumes:volume",
    "secret": "portside.cli.secrets:secret",
    "config": "portside.cli.secrets:config",
    "diff": "portside.cli.commit:diff",
    "commit": "portside.cli.commit:commit",
    "network": "portside.cli.network:network",
    "port": "portside.cli.network:port",
    "compose": "portside.cli.compose:compose",
    "service": "portside.cli.services:service",
    "stack": "portside.cli.stacks:stack",
    "swarm": "portside.cli.swarm:swarm",
    "node": "portside.cli.swarm:node",
    "cp": "portside.cli.cp:cp",
    "update": "portside.cli.manage:update",
    "rename": "portside.cli.manage:rename",
    "export": "portside.cli.exports:export",
    "import": "portside.cli.exports:import_",
    "info": "portside.cli.info:info",
    "version": "portside.cli.info:version",
    "key": "portside.cli.trust:key",
    "sign": "portside.cli.trust:sign",
    "verify": "portside.cli.trust:verify",
    "policy": "portside.cli.trust:policy",
    "trace": "portside.cli.trace:trace",
    "sbom": "portside.cli.sbom:sbom",
    "scan": "portside.cli.scan:scan",
    "where": "portside.cli.where:where",
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module, _, attr = self.lazy[name].partition(":")
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-v", prog_name="portside")
def cli() -> None:
    """portside: build, ship, run, orchestrate and trust containers."""


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except PortsideError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(141)
