"""`portside daemon`: run the engine in the foreground."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from portside.engine.extension import DaemonExtension


def extensions() -> list[DaemonExtension]:
    """What the daemon serves beside the engine, one line each."""
    from portside.orchestrator.extension import OrchestratorExtension
    from portside.trust.secrets.extension import SecretsExtension

    return [SecretsExtension(),  # /secrets, /configs; the engine's SecretSource
            OrchestratorExtension()]  # /swarm, /nodes, /services, /tasks; the reconciler


@click.command("daemon")
@click.option("--socket", "socket_path", type=click.Path(path_type=Path), default=None,
              help="Unix socket to listen on (default /run/portside/portside.sock;"
                   " env PORTSIDE_SOCKET).")
@click.option("--runtime", "runtime", type=click.Choice(["crun", "runc"]), default="crun",
              show_default=True, help="Default OCI runtime for containers.")
@click.option("--policy", "policy_path", type=click.Path(path_type=Path, dir_okay=False),
              default=None, help="image policy (containers policy.json) enforced at pull and"
                                 " create (default: env PORTSIDE_POLICY, else ROOT/policy.json)")
def daemon(socket_path: Path | None, runtime: str, policy_path: Path | None) -> None:
    """Run the portside daemon (Docker Engine API) in the foreground."""
    from portside import config
    from portside.client.transport import socket_path as default_socket
    from portside.engine.daemon import run
    from portside.trust import enforce

    enforcer = enforce.in_force(config.root(), policy_path)
    run(config.root(), socket_path or Path(default_socket()), runtime, extensions(), enforcer)
