"""`portside secret|config create|ls|inspect|rm`, through the daemon (Docker's verbs)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from portside.cli.batch import for_each, inspect_each
from portside.cli.output import table
from portside.errors import InvalidArgument

_LIMITS = {"secret": 500 * 1024, "config": 1000 * 1024}  # Docker's (swarmkit's)


def _remote(kind: str) -> Any:
    from portside.client.secrets import RemoteSecrets

    return RemoteSecrets(kind)


def _read(kind: str, path: str) -> bytes:
    limit = _LIMITS[kind]
    try:
        if path == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with open(path, "rb") as f:
                data = f.read(limit + 1)
    except OSError as exc:
        raise InvalidArgument(f"{kind} file {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise InvalidArgument(f"{kind} file {path} is too large: at most {limit // 1024} KB")
    if not data:
        raise InvalidArgument(f"{kind} file {path} is empty")
    return data


def _age(stamp: str) -> str:
    return stamp[:19].replace("T", " ") if stamp else ""


def _group(kind: str) -> click.Group:
    @click.group(kind, help=f"Manage {kind}s (values kept by the daemon, never in images).")
    def group() -> None:
        pass

    @group.command("create")
    @click.option("-l", "--label", "labels", multiple=True, help="K=V metadata.")
    @click.option("-d", "--driver", default="", help="local (default)" + (
        " or vault" if kind == "secret" else "") + ".")
    @click.option("--vault-path", default="", hidden=kind != "secret",
                  help="With --driver vault: MOUNT/PATH#FIELD, e.g. secret/data/shop#api_key.")
    @click.argument("name")
    @click.argument("file", required=False)
    def create(labels: tuple[str, ...], driver: str, vault_path: str, name: str,
               file: str | None) -> None:
        """Create from FILE ('-' reads standard input); a vault secret takes no FILE."""
        from portside.engine.options import parse_labels

        options: dict[str, str] = {}
        if driver == "vault":
            if file is not None:
                raise InvalidArgument(f"{kind} {name!r}: a vault {kind} takes no file "
                                      "(its value stays in Vault)")
            if not vault_path:
                raise InvalidArgument(f"{kind} {name!r}: --driver vault needs --vault-path "
                                      "MOUNT/PATH#FIELD")
            options["path"] = vault_path
            data = None
        else:
            if vault_path:
                raise InvalidArgument("--vault-path goes with --driver vault")
            if file is None:
                raise InvalidArgument(f"{kind} {name!r}: give a FILE, or '-' for standard input")
            data = _read(kind, file)
        click.echo(_remote(kind).create(name, data, parse_labels(list(labels)), driver, options))

    @group.command("ls")
    @click.option("-q", "--quiet", is_flag=True, help="Only IDs.")
    @click.option("-f", "--filter", "filters", multiple=True, help="id=, name=, label=...")
    @click.option("--format", "fmt", default="table", help="table or json.")
    def ls(quiet: bool, filters: tuple[str, ...], fmt: str) -> None:
        """List them (never their values)."""
        from portside.engine.options import parse_filters

        docs = _remote(kind).list(parse_filters(list(filters)) if filters else None)
        if quiet:
            for d in docs:
                click.echo(d["ID"])
        elif fmt == "json":
            for d in docs:
                spec = d["Spec"]
                click.echo(json.dumps({"ID": d["ID"], "Name": spec["Name"],
                                       "Driver": (spec.get("Driver") or {}).get("Name", ""),
                                       "Labels": spec.get("Labels") or {},
                                       "CreatedAt": d["CreatedAt"], "UpdatedAt": d["UpdatedAt"]}))
        else:
            table(["ID", "NAME", "DRIVER", "CREATED", "UPDATED"],
                  [[d["ID"], d["Spec"]["Name"], (d["Spec"].get("Driver") or {}).get("Name", ""),
                    _age(d["CreatedAt"]), _age(d["UpdatedAt"])] for d in docs])

    @group.command("inspect")
    @click.option("--format", "fmt", default="json", help="json (the default).")
    @click.argument("names", nargs=-1, required=True)
    def inspect(fmt: str, names: tuple[str, ...]) -> None:
        """Details as JSON (Docker's shape; a secret's value is never shown)."""
        if fmt != "json":
            raise InvalidArgument(f"unknown --format {fmt!r}: only json")
        inspect_each(names, _remote(kind).inspect)

    @group.command("rm")
    @click.argument("names", nargs=-1, required=True)
    def rm(names: tuple[str, ...]) -> None:
        """Remove them."""
        remote = _remote(kind)
        for_each(names, remote.remove)

    return group


secret = _group("secret")
config = _group("config")
