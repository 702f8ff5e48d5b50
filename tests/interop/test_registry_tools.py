"""The registry with real outside tools: skopeo and podman against `portside registry serve`,
and `portside push/pull` against the distribution registry (Debian's `docker-registry`).

Every server runs on 127.0.0.1 and a free port with its storage under tmp_path, and is
stopped at the end; podman gets its own root, runroot and vfs storage.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import bcrypt
import pytest
from helpers.imagefactory import Built, add_image, sha
from helpers.podman import Run, need
from helpers.processes import stop_process

from portside.store.images import ImageStore

pytestmark = pytest.mark.interop

def run(*args: str, env: dict[str, str] | None = None, stdin: str | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=300, input=stdin,
                            env={**os.environ, **(env or {})})
    if check:
        assert result.returncode == 0, f"{' '.join(args)}: {result.stderr}"
    return result


def portside(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "portside", *args, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def portside_registry(tmp_path: Path) -> Iterator[Callable[..., str]]:
    procs: list[subprocess.Popen[str]] = []

    def start(*extra: str) -> str:
        proc = subprocess.Popen(
            [sys.executable, "-m", "portside", "registry", "serve", "--addr", "127.0.0.1:0",
             "--root", str(tmp_path / f"registry{len(procs)}"), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on "), line
        return line.split("://", 1)[1].strip()

    yield start
    for proc in procs:
        stop_process(proc)


def write_oci_layout(built: Built, directory: Path, tag: str) -> Path:
    """An OCI image layout holding one image, for `skopeo copy oci:DIR:TAG`."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    for blob in (built.manifest, built.config, *built.layers):
        (blobs / sha(blob)[7:]).write_bytes(blob)
    (directory / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(built.manifest),
        "size": len(built.manifest), "annotations": {"org.opencontainers.image.ref.name": tag}}]}))
    return directory


def test_skopeo_copy_to_and_from_portside(portside_registry: Callable[..., str], store: ImageStore,
                                          tmp_path: Path) -> None:
    skopeo = need("skopeo")
    host = portside_registry()
    built = add_image(store, [{"etc/hello": b"hello\n"}, {"bin/tool": os.urandom(300_000)}])
    layout = write_oci_layout(built, tmp_path / "layout", "v1")
    run(skopeo, "copy", "--dest-tls-verify=false", f"oci:{layout}:v1", f"docker://{host}/team/app:1")
    info = json.loads(run(skopeo, "inspect", "--tls-verify=false", f"docker://{host}/team/app:1").stdout)
    assert info["Digest"] == sha(built.manifest)
    assert [layer for layer in info["Layers"]] == [sha(x) for x in built.layers]
    out = tmp_path / "out"
    run(skopeo, "copy", "--src-tls-verify=false", f"docker://{host}/team/app:1", f"oci:{out}:x")
    for blob in (built.manifest, built.config, *built.layers):
        assert (out / "blobs" / "sha256" / sha(blob)[7:]).read_bytes() == blob
    # a copy to another repository of the same registry
    run(skopeo, "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
        f"docker://{host}/team/app:1", f"docker://{host}/other/app:2")
    tags = json.loads(run(skopeo, "list-tags", "--tls-verify=false", f"docker://{host}/other/app").stdout)
    assert tags["Tags"] == ["2"]
    # what skopeo pushed, portside pulls
    other = {"PORTSIDE_ROOT": str(tmp_path / "pulled")}
    assert sha(built.manifest) in portside("pull", f"{host}/other/app:2", env=other).stdout
    run(skopeo, "delete", "--tls-verify=false", f"docker://{host}/other/app@{sha(built.manifest)}")
    gone = run(skopeo, "inspect", "--tls-verify=false", f"docker://{host}/other/app:2", check=False)
    assert gone.returncode != 0


def test_skopeo_with_the_token_flow(portside_registry: Callable[..., str], store: ImageStore,
                                    tmp_path: Path) -> None:
    skopeo = need("skopeo")
    htpasswd = tmp_path / "users"
    htpasswd.write_text(f"alice:{bcrypt.hashpw(b'wonder', bcrypt.gensalt(4)).decode()}\n")
    config = tmp_path / "auth.yaml"
    config.write_text(f"htpasswd: {htpasswd}\ntoken: {{service: portside-test}}\n"
                      "access:\n  - {repository: 'team/*', users: [alice], actions: [pull, push]}\n")
    host = portside_registry("--auth-config", str(config))
    built = add_image(store, [{"a": b"a"}])
    layout = write_oci_layout(built, tmp_path / "layout", "v1")
    denied = run(skopeo, "copy", "--dest-tls-verify=false", f"oci:{layout}:v1",
                 f"docker://{host}/team/app:1", check=False)
    assert denied.returncode != 0
    run(skopeo, "copy", "--dest-tls-verify=false", "--dest-creds", "alice:wonder",
        f"oci:{layout}:v1", f"docker://{host}/team/app:1")
    info = json.loads(run(skopeo, "inspect", "--tls-verify=false", "--creds", "alice:wonder",
                          f"docker://{host}/team/app:1").stdout)
    assert info["Digest"] == sha(built.manifest)


def test_podman_pull_and_push(portside_registry: Callable[..., str], podman: Run,
                              store: ImageStore, tmp_path: Path) -> None:
    host = portside_registry()
    ref = f"{host}/team/app:1"
    built = add_image(store, [{"etc/hello": b"hello\n"}], tags=(ref,))
    portside("push", "-q", ref)
    podman("pull", "--tls-verify=false", ref)
    images = json.loads(podman("images", "--format", "json").stdout)
    assert any(sha(built.config)[7:].startswith(i["Id"][:12]) for i in images)
    podman("push", "--tls-verify=false", ref, f"{host}/podman/app:2")
    other = {"PORTSIDE_ROOT": str(tmp_path / "pulled")}
    portside("pull", "-q", f"{host}/podman/app:2", env=other)
    pulled = ImageStore(tmp_path / "pulled")
    assert pulled.get(f"{host}/podman/app:2").config_digest == sha(built.config)
    pulled.db.close()


def test_portside_push_pull_against_the_distribution_registry(
        distribution: Callable[..., str], store: ImageStore, tmp_path: Path) -> None:
    host = distribution()
    ref = f"{host}/team/app:1.0"
    built = add_image(store, [{"a": b"alpha"}, {"b": os.urandom(12 << 20)}], tags=(ref,))
    out = portside("push", ref).stdout
    # The layers, as docker push lists them (the config blob is sent too, unlisted).
    assert out.count("Pushed") == 2 and built.image.manifest_digest in out
    assert portside("push", ref).stdout.count("Layer already exists") == 2
    store.tag(ref, f"{host}/other/app:2")
    out = portside("push", f"{host}/other/app:2").stdout
    assert out.count("Mounted from team/app") == 2
    other = {"PORTSIDE_ROOT": str(tmp_path / "pulled")}
    assert built.image.manifest_digest in portside("pull", ref, env=other).stdout
    pulled = ImageStore(tmp_path / "pulled")
    assert pulled.get(ref).config_digest == built.image.config_digest
    assert pulled.content.read(sha(built.layers[1])) == built.layers[1]
    pulled.db.close()
    assert portside("registry", "tags", f"{host}/team/app").stdout.split() == ["1.0"]
    assert set(portside("registry", "ls", host).stdout.split()) == {"team/app", "other/app"}


def test_portside_login_against_the_distribution_registry(
        distribution: Callable[..., str], store: ImageStore, tmp_path: Path) -> None:
    htpasswd = tmp_path / "users"
    htpasswd.write_text(f"alice:{bcrypt.hashpw(b'wonder', bcrypt.gensalt(5)).decode()}\n")
    host = distribution(htpasswd)
    env = {"DOCKER_CONFIG": str(tmp_path / "docker")}
    ref = f"{host}/team/app:1"
    add_image(store, [{"a": b"a"}], tags=(ref,))
    assert portside("push", ref, env=env, check=False).returncode != 0
    bad = portside("login", host, "-u", "alice", "--password-stdin", stdin="no\n", env=env, check=False)
    assert bad.returncode != 0
    portside("login", host, "-u", "alice", "--password-stdin", stdin="wonder\n", env=env)
    portside("push", "-q", ref, env=env)
    portside("logout", host, env=env)


def test_skopeo_copies_a_multi_arch_index_and_portside_pulls_the_host_platform(
        portside_registry: Callable[..., str], store: ImageStore, tmp_path: Path) -> None:
    from portside.oci import mediatypes as mt
    from portside.oci.model import canonical_json, host_platform

    skopeo = need("skopeo")
    host = portside_registry()
    ours = add_image(store, [{"arch": b"host"}])
    other = add_image(store, [{"arch": b"s390x"}])
    config = json.loads(other.config)
    config["architecture"] = "s390x"
    other_config = canonical_json(config)
    manifest = json.loads(other.manifest)
    manifest["config"] = {"mediaType": mt.OCI_CONFIG, "digest": sha(other_config),
                          "size": len(other_config)}
    other_manifest = canonical_json(manifest)
    plat = host_platform()
    index = canonical_json({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
        {"mediaType": mt.OCI_MANIFEST, "digest": sha(other_manifest), "size": len(other_manifest),
         "platform": {"os": "linux", "architecture": "s390x"}},
        {"mediaType": mt.OCI_MANIFEST, "digest": sha(ours.manifest), "size": len(ours.manifest),
         "platform": {"os": plat.os, "architecture": plat.architecture}}]})
    layout = tmp_path / "layout"
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for blob in (index, ours.manifest, ours.config, *ours.layers, other_manifest, other_config,
                 *other.layers):
        (blobs / sha(blob)[7:]).write_bytes(blob)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": mt.OCI_INDEX, "digest": sha(index), "size": len(index),
        "annotations": {"org.opencontainers.image.ref.name": "multi"}}]}))
    run(skopeo, "copy", "--all", "--preserve-digests", "--dest-tls-verify=false",
        f"oci:{layout}:multi", f"docker://{host}/team/multi:1")
    raw = json.loads(run(skopeo, "inspect", "--raw", "--tls-verify=false",
                         f"docker://{host}/team/multi:1").stdout)
    assert raw["mediaType"] == mt.OCI_INDEX and len(raw["manifests"]) == 2
    env = {"PORTSIDE_ROOT": str(tmp_path / "pulled")}
    assert sha(index) in portside("pull", f"{host}/team/multi:1", env=env).stdout
    pulled = ImageStore(tmp_path / "pulled")
    image = pulled.get(f"{host}/team/multi:1")
    assert (image.manifest_digest, image.index_digest) == (sha(ours.manifest), sha(index))
    pulled.db.close()


def test_podman_login_push_pull_through_the_token_flow(
        portside_registry: Callable[..., str], podman: Run, store: ImageStore,
        tmp_path: Path) -> None:
    htpasswd = tmp_path / "users"
    htpasswd.write_text(f"alice:{bcrypt.hashpw(b'wonder', bcrypt.gensalt(4)).decode()}\n")
    config = tmp_path / "auth.yaml"
    config.write_text(f"htpasswd: {htpasswd}\ntoken: {{}}\nanonymous_pull: true\n"
                      "access:\n  - {repository: 'team/*', users: [alice], actions: [pull, push]}\n")
    host = portside_registry("--auth-config", str(config))
    ref = f"{host}/team/app:1"
    add_image(store, [{"etc/hello": b"hello\n"}], tags=(ref,))
    env = {"DOCKER_CONFIG": str(tmp_path / "docker")}
    portside("login", host, "-u", "alice", "--password-stdin", stdin="wonder\n", env=env)
    portside("push", "-q", ref, env=env)
    authfile = str(tmp_path / "auth.json")
    podman("pull", "--tls-verify=false", ref)  # anonymous pull is allowed
    podman("login", "--tls-verify=false", "--authfile", authfile, "-u", "alice",
           "--password-stdin", host, input="wonder\n")
    podman("push", "--tls-verify=false", "--authfile", authfile, ref, f"{host}/team/copy:2")
    assert portside("registry", "tags", f"{host}/team/copy", env=env).stdout.split() == ["2"]
