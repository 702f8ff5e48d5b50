"""`portside key generate`, `sign`, `verify`: cosign-compatible keys and signatures.

The passphrase of a private key comes from `--passphrase-file`, else `COSIGN_PASSWORD`
(as cosign reads it, even when empty), else a prompt; it never appears in a message.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from portside.errors import InvalidArgument

if TYPE_CHECKING:
    from portside.trust.policy import Policy


def passphrase(passphrase_file: Path | None, confirm: bool) -> bytes:
    if passphrase_file is not None:
        try:
            return passphrase_file.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise InvalidArgument(f"--passphrase-file {passphrase_file}: {exc.strerror}") from None
    if "COSIGN_PASSWORD" in os.environ:
        return os.environ["COSIGN_PASSWORD"].encode()
    if not sys.stdin.isatty():
        raise InvalidArgument("no passphrase: give --passphrase-file, set COSIGN_PASSWORD,"
                              " or run on a terminal")
    text: str = click.prompt("Enter password for private key", hide_input=True,
                             confirmation_prompt="Enter password for private key again"
                             if confirm else False, default="", show_default=False)
    return text.encode()


@click.group()
def key() -> None:
    """Signing keys (cosign's formats)."""


@key.command("generate")
@click.option("--name", default="cosign", show_default=True,
              help="write NAME.key (encrypted) and NAME.pub")
@click.option("--dir", "directory", type=click.Path(path_type=Path, file_okay=False),
              default=".", help="directory to write them in")
@click.option("--passphrase-file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--force", is_flag=True, help="replace existing files")
def generate(name: str, directory: Path, passphrase_file: Path | None, force: bool) -> None:
    """Make an ECDSA P-256 key pair that cosign, skopeo and podman read."""
    from portside.trust import keys

    if not name or "/" in name or name.startswith("."):
        raise InvalidArgument(f"--name {name!r}: expected a plain file name")
    private, public = directory / f"{name}.key", directory / f"{name}.pub"
    for path in (private, public):
        if path.exists() and not force:
            raise InvalidArgument(f"{path} exists (use --force to replace it)")
    pair = keys.generate(passphrase(passphrase_file, confirm=True))
    for path, data, mode in ((private, pair.private_pem, 0o600), (public, pair.public_pem, 0o644)):
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise InvalidArgument(f"cannot write {path}: {exc.strerror}") from None
    click.echo(f"Private key written to {private}")
    click.echo(f"Public key written to {public}")


@click.command()
@click.option("--key", "key_path", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="the private key (cosign's encrypted format)")
@click.option("--passphrase-file", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("image")
def sign(key_path: Path, passphrase_file: Path | None, image: str) -> None:
    """Sign IMAGE in its registry (the `.sig` tag and an OCI referrer)."""
    from portside.oci import reference as refs
    from portside.trust import keys, signing

    ref = refs.parse(image).with_default_tag()
    data = keys.read_key_file(key_path)
    private = keys.decrypt_private(data, passphrase(passphrase_file, confirm=False), str(key_path))
    identity = f"{ref.repository}:{ref.tag}" if ref.tag else ref.repository
    digest = asyncio.run(signing.sign_image(ref, private, identity))
    click.echo(f"Signed {ref.repository}@{digest}")


@click.command()
@click.option("--key", "key_path", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="the public key (PEM)")
@click.argument("image")
def verify(key_path: Path, image: str) -> None:
    """Check that IMAGE carries a signature by KEY for its current digest."""
    from portside.oci import reference as refs
    from portside.trust import keys, signing

    ref = refs.parse(image).with_default_tag()
    public = keys.load_public(keys.read_key_file(key_path), str(key_path))
    digest, claims = asyncio.run(signing.verify_image(ref, public))
    click.echo(f"Verified {ref.repository}@{digest} (signed as {claims.identity})")


def _policy_in_force(explicit: Path | None) -> tuple[Path | None, Policy | None]:
    from portside import config
    from portside.trust import policy as policy_mod

    found = policy_mod.find(explicit, config.root(), dict(os.environ))
    return found, policy_mod.load(found) if found else None


@click.group()
def policy() -> None:
    """The image policy (containers policy.json) enforced at pull, create and build."""


@policy.command("show")
@click.option("--policy", "policy_path", type=click.Path(path_type=Path, dir_okay=False),
              help="this file instead of the one in force")
def show(policy_path: Path | None) -> None:
    """Print the policy in force and where it comes from."""
    found, loaded = _policy_in_force(policy_path)
    if found is None:
        click.echo("no policy configured (PORTSIDE_POLICY, daemon --policy, ROOT/policy.json):"
                   " every image is admitted")
        return
    assert loaded is not None
    click.echo(f"# {found}")
    click.echo(loaded.text.rstrip("\n"))


@policy.command("check")
@click.option("--policy", "policy_path", type=click.Path(path_type=Path, dir_okay=False),
              help="this file instead of the one in force")
@click.argument("image")
def check(policy_path: Path | None, image: str) -> None:
    """Say whether the policy admits IMAGE as its registry serves it now."""
    from portside.oci import reference as refs
    from portside.registry.client import RegistryClient
    from portside.trust import enforce, signing

    found, loaded = _policy_in_force(policy_path)
    ref = refs.parse(image).with_default_tag()
    if found is None:
        click.echo(f"{ref}: admitted (no policy configured)")
        return
    assert loaded is not None

    async def judge() -> tuple[str, str | None]:
        async with RegistryClient(ref.domain) as client:
            digest = await signing.resolve_digest(client, ref)
        return digest, await enforce.PolicyEnforcer(loaded).verdict(ref, digest)

    digest, reason = asyncio.run(judge())
    if reason is not None:
        from portside.engine.imagepolicy import PolicyDenied

        raise PolicyDenied(reason)
    click.echo(f"{ref.repository}@{digest}: admitted by {loaded.rule_for(ref).describe()}")
