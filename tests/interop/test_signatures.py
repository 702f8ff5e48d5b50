"""Signatures that other tools read, both ways: portside signs and skopeo's verifying copy
(a `policy.json` `sigstoreSigned` rule, `use-sigstore-attachments`) accepts the image, and
refuses it once the image or the signature changes; skopeo signs with a key portside made
and `portside verify` accepts it.

The registry runs in a thread of the test on 127.0.0.1 and a free port; skopeo gets its
own policy and registries.d under tmp_path.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers.podman import need
from helpers.regserver import LoggedRegistry, publish, serve_registry

from portside.registry.client import RegistryClient
from portside.trust import signing

pytestmark = pytest.mark.interop
PASSWORD = "correct horse battery"


def run(*args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=300,
                            env={**os.environ, **env})
    if check:
        assert result.returncode == 0, f"{' '.join(args)}: {result.stderr}"
    return result


def portside(*args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "portside", *args, check=check, **env)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[LoggedRegistry]:
    logged, stop = serve_registry(tmp_path / "registry")
    yield logged
    stop()


@pytest.fixture
def keypair(tmp_path: Path) -> Path:
    portside("key", "generate", "--name", "release", "--dir", str(tmp_path),
             COSIGN_PASSWORD=PASSWORD)
    return tmp_path / "release"


def skopeo_config(tmp_path: Path, host: str, pub: Path) -> list[str]:
    """skopeo's global flags: a policy that wants `pub`'s signature on HOST/shop and a
    registries.d that reads and writes sigstore attachments there."""
    policy = {"default": [{"type": "reject"}],
              "transports": {
                  "docker": {f"{host}/shop": [{"type": "sigstoreSigned", "keyPath": str(pub),
                                               "signedIdentity": {"type": "matchRepository"}}]},
                  "dir": {"": [{"type": "insecureAcceptAnything"}]}}}
    (tmp_path / "policy.json").write_text(json.dumps(policy))
    regd = tmp_path / "registries.d"
    regd.mkdir(exist_ok=True)
    (regd / "default.yaml").write_text(f"docker:\n  {host}:\n    use-sigstore-attachments: true\n")
    return ["--policy", str(tmp_path / "policy.json"), "--registries.d", str(regd)]


def skopeo_copy(flags: list[str], source: str, dest: str, *extra: str,
                check: bool = True) -> subprocess.CompletedProcess[str]:
    result = run(need("skopeo"), *flags, "copy", "--src-tls-verify=false",
                 "--dest-tls-verify=false", *extra, source, dest, check=False)
    if "sigstore disabled" in result.stderr:
        # Debian builds containers/image with its sigstore code patched out
        pytest.skip("this skopeo is built without sigstore support (Debian-local change)")
    if check:
        assert result.returncode == 0, f"skopeo copy {source} {dest}: {result.stderr}"
    return result


def test_skopeo_reads_the_signature_where_cosign_puts_it(
        tmp_path: Path, registry: LoggedRegistry, keypair: Path) -> None:
    """The `.sig` tag is an image skopeo reads: one simple-signing layer with cosign's
    signature annotation, its payload naming the image's digest."""
    image = f"{registry.host}/shop/web:1"
    publish(tmp_path, image)
    signed = portside("sign", "--key", f"{keypair}.key", image, COSIGN_PASSWORD=PASSWORD)
    digest = signed.stdout.split("@")[1].strip()
    tag = signing.sig_tag(digest)
    raw = run(need("skopeo"), "inspect", "--raw", "--tls-verify=false",
              f"docker://{registry.host}/shop/web:{tag}").stdout
    (layer,) = json.loads(raw)["layers"]
    assert layer["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
    assert "dev.cosignproject.cosign/signature" in layer["annotations"]
    out = tmp_path / "sig"
    run(need("skopeo"), "--insecure-policy", "copy", "--src-tls-verify=false",
        f"docker://{registry.host}/shop/web:{tag}", f"dir:{out}")
    payload = json.loads((out / layer["digest"].split(":")[1]).read_bytes())
    assert payload["critical"]["image"]["docker-manifest-digest"] == digest
    assert payload["critical"]["identity"]["docker-reference"] == image
    tags = json.loads(run(need("skopeo"), "list-tags", "--tls-verify=false",
                          f"docker://{registry.host}/shop/web").stdout)["Tags"]
    assert tag in tags


def test_portside_signature_accepted_by_skopeo_and_refused_when_changed(
        tmp_path: Path, registry: LoggedRegistry, keypair: Path) -> None:
    image = f"{registry.host}/shop/web:1"
    publish(tmp_path, image)
    signed = portside("sign", "--key", f"{keypair}.key", image, COSIGN_PASSWORD=PASSWORD)
    assert signed.stdout.startswith(f"Signed {registry.host}/shop/web@sha256:")
    digest = signed.stdout.split("@")[1].strip()
    verified = portside("verify", "--key", f"{keypair}.pub", image)
    assert f"@{digest}" in verified.stdout

    flags = skopeo_config(tmp_path, registry.host, Path(f"{keypair}.pub"))
    skopeo_copy(flags, f"docker://{image}", f"dir:{tmp_path / 'copy1'}")

    # the signature changed: one byte of the `.sig` tag's signature flipped
    async def tamper() -> None:
        async with RegistryClient(registry.host) as client:
            tag = signing.sig_tag(digest)
            body, _, _ = await client.get_manifest("shop/web", tag)
            doc = json.loads(body)
            notes = doc["layers"][0]["annotations"]
            raw = bytearray(base64.b64decode(notes[signing.SIGNATURE_ANNOTATION]))
            raw[-1] ^= 1
            notes[signing.SIGNATURE_ANNOTATION] = base64.b64encode(bytes(raw)).decode()
            await client.put_manifest("shop/web", tag, json.dumps(doc).encode(), doc["mediaType"])
    asyncio.run(tamper())
    refused = skopeo_copy(flags, f"docker://{image}", f"dir:{tmp_path / 'copy2'}", check=False)
    assert refused.returncode != 0
    assert "signature" in refused.stderr.lower()

    # the image changed: another image under the signed tag
    portside("sign", "--key", f"{keypair}.key", image, COSIGN_PASSWORD=PASSWORD)
    publish(tmp_path / "other", image)
    refused = skopeo_copy(flags, f"docker://{image}", f"dir:{tmp_path / 'copy3'}", check=False)
    assert refused.returncode != 0
    failed = portside("verify", "--key", f"{keypair}.pub", image, check=False)
    assert failed.returncode == 1
    assert "no signature verifies" in failed.stderr
    assert failed.stderr.count("\n") == 1


def test_skopeo_signature_with_a_portside_key_verifies_in_portside(
        tmp_path: Path, registry: LoggedRegistry, keypair: Path) -> None:
    publish(tmp_path, f"{registry.host}/shop/web:1")
    flags = skopeo_config(tmp_path, registry.host, Path(f"{keypair}.pub"))
    (tmp_path / "pw").write_text(PASSWORD)
    skopeo_copy(["--insecure-policy", *flags[2:]], f"docker://{registry.host}/shop/web:1",
                f"docker://{registry.host}/shop/web:2",
                "--sign-by-sigstore-private-key", f"{keypair}.key",
                "--sign-passphrase-file", str(tmp_path / "pw"))
    verified = portside("verify", "--key", f"{keypair}.pub", f"{registry.host}/shop/web:2")
    assert f"signed as {registry.host}/shop/web:2" in verified.stdout
    # skopeo's own verifying copy agrees
    skopeo_copy(flags, f"docker://{registry.host}/shop/web:2", f"dir:{tmp_path / 'copy'}")
    # and the unsigned tag is refused by both
    assert portside("verify", "--key", f"{keypair}.pub", f"{registry.host}/shop/web:1",
                    check=False).returncode == 1


def test_sign_and_verify_on_the_distribution_registry(
        tmp_path: Path, distribution: Callable[..., str], keypair: Path) -> None:
    """The reference registry (no referrers API in Debian's 2.8) takes the `.sig` tag and the
    referrer manifest; verification reads the tag."""
    host = distribution()
    image = f"{host}/shop/web:1"
    publish(tmp_path, image)
    portside("sign", "--key", f"{keypair}.key", image, COSIGN_PASSWORD=PASSWORD)
    verified = portside("verify", "--key", f"{keypair}.pub", image)
    assert verified.stdout.startswith(f"Verified {host}/shop/web@sha256:")
    tags = json.loads(run(need("skopeo"), "list-tags", "--tls-verify=false",
                          f"docker://{host}/shop/web").stdout)["Tags"]
    assert any(t.startswith("sha256-") and t.endswith(".sig") for t in tags)
