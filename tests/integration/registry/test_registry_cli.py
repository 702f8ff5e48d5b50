"""End to end through the command line: `portside registry serve`, push, pull, login, gc."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import bcrypt
import pytest
from helpers.imagefactory import add_image
from helpers.processes import stop_process

from portside.store.images import ImageStore

Serve = Callable[..., str]


def portside(*args: str, env: dict[str, str] | None = None, stdin: str | None = None,
             check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "portside", *args], capture_output=True,
                            text=True, env={**os.environ, **(env or {})}, input=stdin, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """Start `portside registry serve` on a free port; returns its host:port."""
    procs: list[subprocess.Popen[str]] = []

    def start(*extra: str, name: str = "registry") -> str:
        proc = subprocess.Popen(
            [sys.executable, "-m", "portside", "registry", "serve", "--addr", "127.0.0.1:0",
             "--root", str(tmp_path / name), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on "), (line, proc.stderr.read() if proc.stderr else "")
        return line.split("://", 1)[1].strip()

    yield start
    for proc in procs:
        stop_process(proc)


def test_push_pull_ls_tags_through_the_cli(serve: Serve, store: ImageStore, tmp_path: Path) -> None:
    host = serve()
    ref = f"{host}/team/app:1.0"
    built = add_image(store, [{"a": b"a"}, {"b": b"b"}], tags=(ref,))
    out = portside("push", ref).stdout
    assert f"digest: {built.image.manifest_digest}" in out
    assert out.count("Pushed") == 2  # the layers, as docker push shows them (not the config)
    out = portside("push", ref).stdout
    assert out.count("Layer already exists") == 2
    other = {"PORTSIDE_ROOT": str(tmp_path / "other")}
    out = portside("pull", ref, env=other).stdout
    assert f"Digest: {built.image.manifest_digest}" in out
    images = portside("images", "--format", "json", env=other, check=False)
    if images.returncode == 0:  # the images command belongs to another module
        assert "team/app" in images.stdout
    pulled = ImageStore(tmp_path / "other")
    assert pulled.get(ref).config_digest == built.image.config_digest
    pulled.db.close()
    assert "Image is up to date" in portside("pull", ref, env=other).stdout
    assert portside("registry", "ls", host).stdout.split() == ["team/app"]
    assert portside("registry", "tags", f"{host}/team/app").stdout.split() == ["1.0"]


def test_errors_are_one_line(serve: Serve, store: ImageStore) -> None:
    host = serve()
    result = portside("pull", f"{host}/no/such:1", check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("Error:") and "manifest unknown" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = portside("push", f"{host}/not/local:1", check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "An image does not exist locally with the tag" in result.stderr  # dockerd's words
    result = portside("pull", "127.0.0.1:1/nothing/listens:1", check=False)
    assert result.returncode != 0 and "cannot reach registry" in result.stderr


def test_login_push_logout_with_htpasswd(serve: Serve, store: ImageStore, tmp_path: Path) -> None:
    htpasswd = tmp_path / "users"
    htpasswd.write_text(f"alice:{bcrypt.hashpw(b'wonder', bcrypt.gensalt(4)).decode()}\n")
    host = serve("--htpasswd", str(htpasswd))
    env = {"DOCKER_CONFIG": str(tmp_path / "docker")}
    ref = f"{host}/team/app:1"
    add_image(store, [{"a": b"a"}], tags=(ref,))
    denied = portside("push", ref, env=env, check=False)
    assert denied.returncode != 0 and "unauthorized" in denied.stderr
    bad = portside("login", host, "-u", "alice", "--password-stdin", stdin="wrong\n", env=env,
                   check=False)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert not (tmp_path / "docker" / "config.json").exists()
    out = portside("login", host, "-u", "alice", "--password-stdin", stdin="wonder\n", env=env).stdout
    assert "Login Succeeded" in out
    config = json.loads((tmp_path / "docker" / "config.json").read_text())
    assert host in config["auths"]
    portside("push", "-q", ref, env=env)
    assert "Removing login credentials" in portside("logout", host, env=env).stdout
    assert portside("push", ref, env=env, check=False).returncode != 0


def test_gc_and_replicate_through_the_cli(serve: Serve, store: ImageStore, tmp_path: Path) -> None:
    src, dst = serve(name="src"), serve(name="dst")
    ref = f"{src}/team/app:1"
    add_image(store, [{"a": b"a"}], tags=(ref,))
    portside("push", "-q", ref)
    out = portside("registry", "replicate", src, dst).stdout
    assert "team/app: 2 blobs sent" in out
    out = portside("registry", "replicate", src, dst, "--repo", "team/app").stdout
    assert "team/app: 0 blobs sent" in out and "2 already present" in out
    assert portside("registry", "tags", f"{dst}/team/app").stdout.split() == ["1"]
    out = portside("registry", "gc", "--root", str(tmp_path / "src"), "--dry-run").stdout
    assert "would remove 0 blobs" in out
    result = portside("registry", "gc", "--root", str(tmp_path / "nowhere"), check=False)
    assert result.returncode != 0 and "not a registry root" in result.stderr


def test_gc_retention_from_a_config_file(serve: Serve, store: ImageStore, tmp_path: Path) -> None:
    host = serve(name="reg")
    for i, tag in enumerate(["v1", "v2", "v3"]):
        ref = f"{host}/team/app:{tag}"
        add_image(store, [{"f": f"layer {i}".encode()}], tags=(ref,))
        portside("push", "-q", ref)
    config = tmp_path / "gc.yaml"
    config.write_text("gc:\n  keep_last: 1\n  tag_pattern: 'v.*'\n  grace: 0s\n")
    out = portside("registry", "gc", "--root", str(tmp_path / "reg"), "--config", str(config)).stdout
    assert "removed tag team/app:v1" in out and "removed tag team/app:v2" in out
    assert portside("registry", "tags", f"{host}/team/app").stdout.split() == ["v3"]
    other = {"PORTSIDE_ROOT": str(tmp_path / "other")}
    portside("pull", "-q", f"{host}/team/app:v3", env=other)
    assert portside("pull", f"{host}/team/app:v1", env=other, check=False).returncode != 0


def test_tls_serving(serve: Serve, store: ImageStore, tmp_path: Path,
                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parents[2] / "unit" / "registry"))
    from helpers.regserver import self_signed

    cert, key = self_signed(tmp_path)
    host = serve("--tls-cert", str(cert), "--tls-key", str(key))
    ref = f"{host}/secure/app:1"
    add_image(store, [{"a": b"a"}], tags=(ref,))
    refused = portside("push", ref, check=False)  # a self-signed certificate is not trusted
    assert refused.returncode != 0 and "certificate" in refused.stderr
    portside("push", "-q", "--insecure", ref)
    trusted = {"SSL_CERT_FILE": str(cert), "PORTSIDE_ROOT": str(tmp_path / "other")}
    assert "Digest:" in portside("pull", ref, env=trusted).stdout


def test_pull_through_cache_via_the_cli(serve: Serve, store: ImageStore, tmp_path: Path) -> None:
    upstream = serve(name="upstream")
    ref = f"{upstream}/library/app:1"
    built = add_image(store, [{"a": b"from upstream"}], tags=(ref,))
    portside("push", "-q", ref)
    cache = serve("--proxy", f"http://{upstream}", "--proxy-allow", "library/*", name="cache")
    env = {"PORTSIDE_ROOT": str(tmp_path / "other")}
    assert built.image.manifest_digest in portside("pull", f"{cache}/library/app:1", env=env).stdout
    assert (tmp_path / "cache" / "blobs" / "sha256" / built.image.config_digest[7:]).exists()
    store.tag(ref, f"{cache}/library/app:2")
    refused = portside("push", f"{cache}/library/app:2", check=False)
    assert refused.returncode != 0 and "unsupported" in refused.stderr
