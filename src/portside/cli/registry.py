"""`portside registry serve|gc|ls|tags|replicate`, `push`, `pull`, `login`, `logout`.

The registry package (and aiohttp with it) is imported inside each command, so the CLI's
start-up stays light.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click

from portside import config as portside_config
from portside.errors import InvalidArgument
from portside.numbers import is_digits


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def _addr(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not (is_digits(port)) or int(port) > 65535:
        raise InvalidArgument(f"--addr {text!r}: expected HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


def _duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise InvalidArgument(f"invalid duration {text!r} (e.g. 30s, 10m, 1h, 2d)") from None


@click.group()
def registry() -> None:
    """Run and manage an OCI distribution registry."""


@registry.command()
@click.option("--addr", default="127.0.0.1:5000", show_default=True, help="HOST:PORT to listen on")
@click.option("--root", type=click.Path(path_type=Path), help="storage (default $PORTSIDE_ROOT/registry)")
@click.option("--htpasswd", type=click.Path(path_type=Path, exists=True), help="bcrypt htpasswd users")
@click.option("--auth-config", type=click.Path(path_type=Path, exists=True),
              help="YAML access rules (token flow, per-repository pull/push/delete)")
@click.option("--tls-cert", type=click.Path(path_type=Path, exists=True))
@click.option("--tls-key", type=click.Path(path_type=Path, exists=True))
@click.option("--proxy", "proxy_url", help="pull-through cache of this upstream registry URL")
@click.option("--proxy-user", help="USER:PASSWORD for the upstream registry")
@click.option("--proxy-allow", multiple=True, help="repository glob the cache may fetch (repeatable)")
@click.option("--policy", "policy_path", type=click.Path(path_type=Path, dir_okay=False),
              help="refuse tag pushes the image policy (policy.json) does not admit")
def serve(addr: str, root: Path | None, htpasswd: Path | None, auth_config: Path | None,
          tls_cert: Path | None, tls_key: Path | None, proxy_url: str | None,
          proxy_user: str | None, proxy_allow: tuple[str, ...],
          policy_path: Path | None) -> None:
    """Serve the OCI distribution API (v2) until interrupted."""
    from portside.registry import server

    host, port = _addr(addr)
    if bool(tls_cert) != bool(tls_key):
        raise InvalidArgument("--tls-cert and --tls-key go together")
    ssl_context = server.tls_context(tls_cert, tls_key) if tls_cert and tls_key else None
    proxy = None
    if proxy_url:
        from portside.registry.proxy import Proxy

        proxy = Proxy(proxy_url, proxy_user, list(proxy_allow))
    loaded = None
    if policy_path is not None:
        from portside.trust import policy

        loaded = policy.load(policy_path)  # a bad policy stops the server before it binds
    reg = server.open_registry(root or portside_config.root() / "registry", auth_config, htpasswd,
                               proxy)
    if loaded is not None:
        from portside.trust.pushpolicy import RegistryPushPolicy

        reg.push_policy = RegistryPushPolicy(loaded, reg.storage)

    async def main() -> None:
        import signal

        runner, bound = await server.start(reg, host, port, ssl_context)
        scheme = "https" if ssl_context else "http"
        click.echo(f"listening on {scheme}://{host}:{bound}")
        sys.stdout.flush()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
            reg.storage.close()

    _run(main())


@registry.command()
@click.option("--root", type=click.Path(path_type=Path), help="storage (default $PORTSIDE_ROOT/registry)")
@click.option("--dry-run", is_flag=True, help="report what would be removed, remove nothing")
@click.option("--grace", default="1h", show_default=True,
              help="never sweep blobs or uploads younger than this")
@click.option("--keep-last", type=int, help="retention: keep the N newest matching tags per repository")
@click.option("--tag-pattern", default=".*", show_default=True, help="retention: tags it applies to")
@click.option("--delete-untagged", is_flag=True, help="also delete manifests no tag or index names")
@click.option("--config", "config_file", type=click.Path(path_type=Path, exists=True),
              help="YAML with grace, keep_last, tag_pattern, delete_untagged (flags win)")
def gc(root: Path | None, dry_run: bool, grace: str, keep_last: int | None, tag_pattern: str,
       delete_untagged: bool, config_file: Path | None) -> None:
    """Remove unreferenced blobs (mark and sweep), safe while pushes are under way."""
    from portside.registry import gc as gc_mod

    if config_file is not None:
        settings = gc_mod.load_settings(config_file)
        ctx = click.get_current_context()

        def default(name: str) -> bool:
            return ctx.get_parameter_source(name) == click.core.ParameterSource.DEFAULT

        if default("grace") and "grace" in settings:
            grace = str(settings["grace"])
        if keep_last is None and "keep_last" in settings:
            keep_last = int(str(settings["keep_last"]))
        if default("tag_pattern") and "tag_pattern" in settings:
            tag_pattern = str(settings["tag_pattern"])
        delete_untagged = delete_untagged or bool(settings.get("delete_untagged"))
    report = gc_mod.collect(root or portside_config.root() / "registry", dry_run=dry_run,
                            grace=_duration(grace), keep_last=keep_last, tag_pattern=tag_pattern,
                            delete_untagged=delete_untagged)
    verb = "would remove" if dry_run else "removed"
    for tag in report.tags:
        click.echo(f"{verb} tag {tag}")
    for manifest in report.manifests:
        click.echo(f"{verb} manifest {manifest}")
    for digest in report.blobs:
        click.echo(f"{verb} blob {digest}")
    click.echo(f"{verb} {len(report.blobs)} blobs, {report.bytes} bytes; kept {report.kept}")


@registry.command("ls")
@click.argument("host")
@click.option("--insecure", is_flag=True, help="allow http / unverified https")
def ls(host: str, insecure: bool) -> None:
    """List the repositories of a registry (its catalog)."""
    from portside.registry.client import RegistryClient

    async def main() -> list[str]:
        async with RegistryClient(host, insecure=insecure) as client:
            return await client.catalog()

    for name in _run(main()):
        click.echo(name)


@registry.command()
@click.argument("repository")
@click.option("--insecure", is_flag=True, help="allow http / unverified https")
def tags(repository: str, insecure: bool) -> None:
    """List the tags of a repository (HOST/NAME)."""
    from portside.oci import reference as refs
    from portside.registry.client import RegistryClient

    ref = refs.parse(repository)

    async def main() -> list[str]:
        async with RegistryClient(ref.domain, insecure=insecure) as client:
            return await client.tags(ref.path)

    for name in _run(main()):
        click.echo(name)


@registry.command()
@click.argument("source")
@click.argument("destination")
@click.option("--repo", "repos", multiple=True, help="repository to copy (repeatable; default all)")
@click.option("--insecure", is_flag=True, help="allow http / unverified https")
def replicate(source: str, destination: str, repos: tuple[str, ...], insecure: bool) -> None:
    """Copy repositories from SOURCE to DESTINATION registry, sending only missing blobs."""
    from portside.registry.transfer import replicate as do_replicate

    result = _run(do_replicate(source, destination, list(repos) or None, insecure=insecure))
    for repo, report in result.items():
        click.echo(f"{repo}: {len(report.sent)} blobs sent ({report.bytes} bytes),"
                   f" {len(report.skipped)} already present")


@click.command()
@click.argument("reference")
@click.option("-q", "--quiet", is_flag=True, help="no progress output")
@click.option("--insecure", is_flag=True, help="allow http / unverified https")
def push(reference: str, quiet: bool, insecure: bool) -> None:
    """Push an image to a registry; only the layers it lacks are sent."""
    from portside.cli.engine import engine
    from portside.engine.interface import PushOptions
    from portside.registry import progress

    report = engine().images.push(PushOptions(reference, insecure=insecure),
                                  progress.for_terminal(quiet))
    if not quiet:
        click.echo(f"{reference}: digest: {report.digest}")


@click.command()
@click.argument("reference")
@click.option("-q", "--quiet", is_flag=True, help="no progress output")
@click.option("--insecure", is_flag=True, help="allow http / unverified https")
def pull(reference: str, quiet: bool, insecure: bool) -> None:
    """Pull an image from a registry; only the layers the store lacks are fetched."""
    from portside.cli.engine import engine
    from portside.engine.interface import PullOptions
    from portside.registry import progress

    report = engine().images.pull(PullOptions(reference, insecure=insecure),
                                  progress.for_terminal(quiet))
    if quiet:
        click.echo(reference)
    else:
        click.echo(f"Digest: {report.digest}")
        click.echo(f"Status: Downloaded newer image for {reference}" if report.updated
                   else f"Status: Image is up to date for {reference}")


@click.command()
@click.argument("server")
@click.option("-u", "--username", help="user name")
@click.option("-p", "--password", help="password (prefer --password-stdin)")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@click.option("--insecure", is_flag=True, help="allow http / unverified https")
def login(server: str, username: str | None, password: str | None, password_stdin: bool,
          insecure: bool) -> None:
    """Log in to a registry; credentials go to Docker's config.json."""
    from portside.registry import credentials
    from portside.registry.client import RegistryClient

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    if not username:
        username = click.prompt("Username")
    if password is None:
        password = click.prompt("Password", hide_input=True)
    assert username is not None and password is not None

    async def check() -> None:
        async with RegistryClient(server, insecure=insecure, auth=(username, password)) as client:
            await client.check()

    _run(check())
    path = credentials.store(server, username, password)
    click.echo(f"Login Succeeded (credentials saved in {path})")


@click.command()
@click.argument("server")
def logout(server: str) -> None:
    """Forget the credentials of a registry."""
    from portside.registry import credentials

    if credentials.erase(server):
        click.echo(f"Removing login credentials for {server}")
    else:
        click.echo(f"Not logged in to {server}")
