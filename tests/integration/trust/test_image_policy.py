"""One policy at every door of a daemon: a policy.json that wants a portside signature on
`HOST/shop` and rejects everything else is enforced at `portside pull` and `run`, at the
docker client's `pull` and `run`, and at docker-py's container create (HTTP 403), each
refusal one line naming the rule, the repository and the digest.

The registry runs in a thread of the test; the daemon has its own root and socket, and
PORTSIDE_POLICY in its environment.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from helpers.busybox import busybox_image
from helpers.daemon import PortsideDaemon
from helpers.regserver import LoggedRegistry, serve_registry

from portside.registry import transfer
from portside.store.images import ImageStore

PASSWORD = "pw for the test"


def portside(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "portside", *args], capture_output=True,
                            text=True, timeout=300, env={**os.environ, **env})
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[LoggedRegistry]:
    logged, stop = serve_registry(tmp_path / "registry")
    yield logged
    stop()


def push_busybox(tmp_path: Path, ref: str) -> None:
    store = ImageStore(tmp_path / f"src-{abs(hash(ref))}")
    try:
        busybox_image(store, tags=(ref,))
        asyncio.run(transfer.push(store, ref))
    finally:
        store.db.close()


@pytest.fixture
def guarded(tmp_path: Path, root: Path, store: ImageStore,
            registry: LoggedRegistry) -> Iterator[PortsideDaemon]:
    """A daemon under a policy: HOST/shop signed by the test's key, anything else rejected;
    HOST/shop/web:1 is signed, HOST/shop/unsigned:1 is not."""
    busybox_image(store)
    portside("key", "generate", "--name", "k", "--dir", str(tmp_path), COSIGN_PASSWORD=PASSWORD)
    for name in ("web", "unsigned"):
        push_busybox(tmp_path, f"{registry.host}/shop/{name}:1")
    portside("sign", "--key", str(tmp_path / "k.key"), f"{registry.host}/shop/web:1",
             COSIGN_PASSWORD=PASSWORD)
    policy = {"default": [{"type": "reject"}],
              "transports": {"docker": {f"{registry.host}/shop": [
                  {"type": "sigstoreSigned", "keyPath": "k.pub",
                   "signedIdentity": {"type": "matchRepository"}}]}}}
    (tmp_path / "policy.json").write_text(json.dumps(policy, indent=2))
    d = PortsideDaemon(root)
    d.env["PORTSIDE_POLICY"] = str(tmp_path / "policy.json")
    d.start()
    try:
        yield d
    finally:
        d.cleanup()


def one_line_refusal(stderr: str, scope: str, repository: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert scope in lines[0] and f"{repository}@sha256:" in lines[0], stderr


def test_signed_image_is_pulled_and_runs(guarded: PortsideDaemon,
                                         registry: LoggedRegistry) -> None:
    image = f"{registry.host}/shop/web:1"
    guarded.cli("pull", image)
    assert guarded.cli("run", "--rm", image, "echo", "admitted").stdout.strip() == "admitted"
    # the verdict is cached: a second run asks the registry nothing
    before = len(registry.requests)
    guarded.cli("run", "--rm", image, "true")
    assert len(registry.requests) == before


def test_unsigned_image_is_refused_at_every_door(guarded: PortsideDaemon,
                                                 registry: LoggedRegistry) -> None:
    unsigned = f"{registry.host}/shop/unsigned:1"
    scope = f'transports.docker["{registry.host}/shop"] sigstoreSigned'
    refused = guarded.cli("pull", unsigned, check=False)
    assert refused.returncode != 0
    one_line_refusal(refused.stderr, scope, f"{registry.host}/shop/unsigned")
    assert "no signature found" in refused.stderr
    assert guarded.cli("images", "-q", unsigned).stdout.strip() == ""

    refused = guarded.docker("pull", unsigned, check=False)
    assert refused.returncode != 0
    assert scope in refused.stderr

    # the local busybox falls under the default rule, for portside run and docker run alike
    refused = guarded.cli("run", "--rm", "busybox", "true", check=False)
    assert refused.returncode != 0
    one_line_refusal(refused.stderr, "default reject", "docker.io/library/busybox")
    refused = guarded.docker("run", "--rm", "busybox", "true", check=False)
    assert refused.returncode != 0
    assert "default reject refuses docker.io/library/busybox@sha256:" in refused.stderr
    assert guarded.cli("ps", "-aq").stdout.strip() == ""

    client = docker.DockerClient(base_url=f"unix://{guarded.socket}", timeout=120)
    try:
        with pytest.raises(docker.errors.APIError) as caught:
            client.containers.create("busybox", ["true"])
        assert caught.value.status_code == 403
    finally:
        client.close()


def test_bad_policy_stops_the_daemon_with_line_and_column(tmp_path: Path, root: Path) -> None:
    (tmp_path / "policy.json").write_text('{"default": [{"type": "reject"}],\n  "transport": {}}\n')
    result = subprocess.run([sys.executable, "-m", "portside", "daemon", "--socket",
                             str(tmp_path / "d.sock"), "--policy", str(tmp_path / "policy.json")],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PORTSIDE_ROOT": str(root)})
    assert result.returncode == 2
    assert result.stderr.strip() == (f"Error: {tmp_path / 'policy.json'}: line 2 column 3: "
                                     "unknown field 'transport' in the policy")


def test_build_from_images_are_judged(tmp_path: Path, guarded: PortsideDaemon,
                                      registry: LoggedRegistry) -> None:
    """The daemon's build (the docker client's classic builder) and the in-process
    `portside build` judge each FROM image by the same policy."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {registry.host}/shop/web:1\nRUN true\n"
                                    "FROM busybox\nCOPY --from=0 /bin/sh /sh2\n")
    env = guarded.docker_env(DOCKER_BUILDKIT="0")
    refused = subprocess.run(guarded.docker_argv("build", "-t", "tr-app:1", str(ctx)), env=env,
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0
    assert "Dockerfile:3: FROM busybox: policy" in refused.stdout + refused.stderr
    assert "default reject refuses docker.io/library/busybox@sha256:" in refused.stdout + \
        refused.stderr

    (ctx / "Dockerfile").write_text(f"FROM {registry.host}/shop/web:1\nRUN echo ok > /ok\n")
    built = subprocess.run(guarded.docker_argv("build", "-t", "tr-app:2", str(ctx)), env=env,
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr

    (ctx / "Dockerfile").write_text("FROM busybox\n")
    local = guarded.cli("build", "-t", "tr-app:3", str(ctx), check=False)
    assert local.returncode != 0
    assert "Dockerfile:1: FROM busybox: policy" in local.stderr


def test_compose_pull_and_build_are_judged(tmp_path: Path, guarded: PortsideDaemon,
                                           registry: LoggedRegistry) -> None:
    """compose pulls and builds in its own process: the same policy judges them."""
    project = tmp_path / "proj"
    project.mkdir()
    compose = project / "compose.yaml"
    compose.write_text(f"services:\n  web:\n    image: {registry.host}/shop/unsigned:1\n")
    refused = guarded.cli("compose", "-f", str(compose), "pull", check=False)
    assert refused.returncode != 0
    assert f"refuses {registry.host}/shop/unsigned@sha256:" in refused.stderr
    compose.write_text(f"services:\n  web:\n    image: {registry.host}/shop/web:1\n")
    guarded.cli("compose", "-f", str(compose), "pull")

    (project / "Dockerfile").write_text("FROM busybox\n")
    compose.write_text("services:\n  app:\n    build: .\n")
    refused = guarded.cli("compose", "-f", str(compose), "build", check=False)
    assert refused.returncode != 0
    assert "Dockerfile:1: FROM busybox: policy" in refused.stderr
