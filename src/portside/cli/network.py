"""`portside network create|connect|disconnect|ls|inspect|rm|prune` and `portside port`,
through the engine's networks (and container inspect for `port`)."""

from __future__ import annotations

import json
import sys

import click

from portside.cli.batch import for_each, inspect_each
from portside.cli.engine import engine
from portside.cli.output import table
from portside.engine.interface import (
    Document,
    EndpointOptions,
    NetworkCreate,
    doc_at,
    list_at,
    str_at,
)
from portside.errors import InvalidArgument


def _pairs(items: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not key or not eq and what == "option":
            raise InvalidArgument(f"invalid {what} {item!r}: use KEY=VALUE")
        out[key] = value
    return out


@click.group("network")
def network() -> None:
    """Manage networks."""


@network.command("create")
@click.option("-d", "--driver", default="bridge", help="Only bridge.")
@click.option("--subnet", default="", help="IPv4 subnet in CIDR form, e.g. 10.89.5.0/24.")
@click.option("--gateway", default="", help="Gateway address in the subnet.")
@click.option("--internal", is_flag=True, help="No outside access (no NAT, no route out).")
@click.option("--label", "labels", multiple=True, help="KEY=VALUE metadata.")
@click.option("-o", "--opt", "opts", multiple=True, help="Driver option KEY=VALUE (mtu).")
@click.argument("name")
def create(driver: str, subnet: str, gateway: str, internal: bool, labels: tuple[str, ...],
           opts: tuple[str, ...], name: str) -> None:
    """Create a bridge network; prints its id."""
    config: Document = {k: v for k, v in (("Subnet", subnet), ("Gateway", gateway)) if v}
    ipam: Document = {"Driver": "default", "Config": [config] if subnet or gateway else []}
    click.echo(engine().networks.create(NetworkCreate(
        name=name, driver=driver, internal=internal, labels=_pairs(labels, "label"),
        options=_pairs(opts, "option"), ipam=ipam)))


def _filters(items: tuple[str, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise InvalidArgument(f"invalid filter {item!r}: use KEY=VALUE")
        out.setdefault(key, []).append(value)
    return out


@network.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only ids.")
@click.option("-f", "--filter", "filters", multiple=True, help="name=, id=, label=, driver=...")
@click.option("--format", "fmt", default="table", help="table or json.")
@click.option("--no-trunc", is_flag=True, help="Full ids.")
def ls(quiet: bool, filters: tuple[str, ...], fmt: str, no_trunc: bool) -> None:
    """List networks."""
    nets = engine().networks.list(_filters(filters) if filters else None)

    def ident(n: Document) -> str:
        full = str_at(n, "Id")
        return full if no_trunc else full[:12]

    if quiet:
        for n in nets:
            click.echo(ident(n))
    elif fmt == "json":
        for n in nets:
            click.echo(json.dumps({"ID": ident(n), "Name": n["Name"], "Driver": n["Driver"],
                                   "Scope": n["Scope"], "Internal": n["Internal"],
                                   "Labels": n["Labels"]}))
    else:
        table(["NETWORK ID", "NAME", "DRIVER", "SCOPE"],
              [[ident(n), n["Name"], n["Driver"], n["Scope"]] for n in nets])


@network.command("inspect")
@click.argument("names", nargs=-1, required=True)
def inspect(names: tuple[str, ...]) -> None:
    """Details of networks as JSON."""
    inspect_each(names, engine().networks.inspect)


@network.command("rm")
@click.argument("names", nargs=-1, required=True)
def rm(names: tuple[str, ...]) -> None:
    """Remove networks (refused while a container is attached)."""
    for_each(names, engine().networks.remove)


@network.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.option("--filter", "filters", multiple=True, help="label=KEY[=VALUE].")
def prune(force: bool, filters: tuple[str, ...]) -> None:
    """Remove every user-defined network without containers."""
    if not force and sys.stdin.isatty():
        click.confirm("WARNING! This will remove all custom networks not used by at least one"
                      " container. Continue?", abort=True)
    report = engine().networks.prune(_filters(filters) if filters else None)
    if report.deleted:
        click.echo("Deleted Networks:")
        for name in report.deleted:
            click.echo(name)


@network.command("connect")
@click.option("--alias", "aliases", multiple=True, help="Extra DNS name on this network.")
@click.option("--ip", default="", help="Fixed IPv4 address.")
@click.argument("network_name", metavar="NETWORK")
@click.argument("container")
def connect(aliases: tuple[str, ...], ip: str, network_name: str, container: str) -> None:
    """Connect a running container to a network."""
    engine().networks.connect(network_name, container,
                              EndpointOptions(aliases=list(aliases), ipv4_address=ip))


@network.command("disconnect")
@click.option("-f", "--force", is_flag=True, help="Also when the container is not running.")
@click.argument("network_name", metavar="NETWORK")
@click.argument("container")
def disconnect(force: bool, network_name: str, container: str) -> None:
    """Disconnect a container from a network."""
    engine().networks.disconnect(network_name, container, force=force)


@click.command("port")
@click.argument("container")
@click.argument("private_port", required=False, default="")
def port(container: str, private_port: str) -> None:
    """List a container's published ports, or the host ports of one container port."""
    ports = doc_at(engine().containers.inspect(container), "NetworkSettings", "Ports")
    want = private_port if "/" in private_port or not private_port else f"{private_port}/tcp"
    found = False
    for key in ports:
        if want and key != want:
            continue
        for b in list_at(ports, key):
            if not isinstance(b, dict):
                continue
            addr = f"{str_at(b, 'HostIp') or '0.0.0.0'}:{b.get('HostPort')}"
            click.echo(addr if want else f"{key} -> {addr}")
            found = True
    if want and not found:
        raise InvalidArgument(f"no public port '{want}' published for {container}")
