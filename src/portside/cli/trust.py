"""`portside key generate`, `sign`, `verify`: cosign-compatible keys and signatures.

The passphrase of a private key comes from `--passphrase-file`, else `COSIGN_PASSWORD`
(as cosign reads it, even when empty), else a prompt; it never appears in a message.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import click

from portside.errors import InvalidArgument


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
