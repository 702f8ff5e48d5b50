"""`portside key generate`, `sign`, `verify`, `policy show|check` against a registry in a
thread of the test: what a user sees, good input and bad."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.regserver import LoggedRegistry, publish, serve_registry

PASSWORD = "a long passphrase"


def portside(*args: str, check: bool = True, env: dict[str, str] | None = None,
             ) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "COSIGN_PASSWORD": PASSWORD, **(env or {})}
    result = subprocess.run([sys.executable, "-m", "portside", *args], capture_output=True,
                            text=True, timeout=300, env=full, stdin=subprocess.DEVNULL)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[LoggedRegistry]:
    logged, stop = serve_registry(tmp_path / "registry")
    yield logged
    stop()


def test_sign_verify_and_the_policy_commands(tmp_path: Path, root: Path,
                                             registry: LoggedRegistry) -> None:
    image = f"{registry.host}/shop/web:1"
    publish(tmp_path, image)
    portside("key", "generate", "--name", "release", "--dir", str(tmp_path))
    assert (tmp_path / "release.key").stat().st_mode & 0o777 == 0o600
    again = portside("key", "generate", "--name", "release", "--dir", str(tmp_path), check=False)
    assert again.returncode == 2 and "exists (use --force" in again.stderr

    # nothing is signed yet
    unsigned = portside("verify", "--key", str(tmp_path / "release.pub"), image, check=False)
    assert unsigned.returncode == 1
    assert unsigned.stderr.startswith(f"Error: {registry.host}/shop/web@sha256:")
    assert "no signature verifies with the key" in unsigned.stderr

    wrong = portside("sign", "--key", str(tmp_path / "release.key"), image, check=False,
                     env={"COSIGN_PASSWORD": "not it"})
    assert wrong.returncode == 2
    assert wrong.stderr.strip() == (f"Error: {tmp_path / 'release.key'}: wrong passphrase"
                                    " (or the key file is damaged)")
    assert "not it" not in wrong.stderr
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    portside("sign", "--key", str(tmp_path / "release.key"), "--passphrase-file",
             str(tmp_path / "pw"), image, env={"COSIGN_PASSWORD": "ignored"})
    ok = portside("verify", "--key", str(tmp_path / "release.pub"), image)
    assert ok.stdout.startswith(f"Verified {registry.host}/shop/web@sha256:")

    portside("key", "generate", "--name", "other", "--dir", str(tmp_path))
    other = portside("verify", "--key", str(tmp_path / "other.pub"), image, check=False)
    assert other.returncode == 1 and "1 signature(s), none verifies" in other.stderr
    # a second signer adds to the `.sig` tag: both keys verify
    portside("sign", "--key", str(tmp_path / "other.key"), image)
    for key in ("other.pub", "release.pub"):
        portside("verify", "--key", str(tmp_path / key), image)
    # the image changed under its tag: the signatures are for the old digest
    publish(tmp_path / "changed", image)
    changed = portside("verify", "--key", str(tmp_path / "release.pub"), image, check=False)
    assert changed.returncode == 1 and "no signature verifies" in changed.stderr
    portside("sign", "--key", str(tmp_path / "release.key"), image)

    missing = portside("sign", "--key", str(tmp_path / "release.key"),
                       f"{registry.host}/shop/nothing:1", check=False)
    assert missing.returncode != 0 and missing.stderr.count("\n") == 1

    # the policy commands
    assert "no policy configured" in portside("policy", "show").stdout
    policy = {"default": [{"type": "reject"}],
              "transports": {"docker": {f"{registry.host}/shop": [
                  {"type": "sigstoreSigned", "keyPath": str(tmp_path / "release.pub")}]}}}
    (root / "policy.json").write_text(json.dumps(policy, indent=2))  # the root's default file
    shown = portside("policy", "show").stdout
    assert shown.startswith(f"# {root / 'policy.json'}\n") and '"sigstoreSigned"' in shown
    admitted = portside("policy", "check", image)
    assert f'admitted by transports.docker["{registry.host}/shop"] [sigstoreSigned]' \
        in admitted.stdout
    publish(tmp_path / "later", f"{registry.host}/shop/web:2")
    refused = portside("policy", "check", f"{registry.host}/shop/web:2", check=False)
    assert refused.returncode == 1 and "no signature found" in refused.stderr
    (tmp_path / "open.json").write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
    portside("policy", "check", "--policy", str(tmp_path / "open.json"),
             f"{registry.host}/shop/web:2")
