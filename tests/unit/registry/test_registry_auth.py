"""Access: htpasswd basic auth, rules, the token flow, anonymous pull, TLS, credentials."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from pathlib import Path

import bcrypt
import pytest
from helpers.imagefactory import add_image
from helpers.regserver import RunningRegistry, error_code, http

from portside.registry import credentials, transfer
from portside.registry.client import RegistryClient
from portside.registry.errors import AuthFailed
from portside.store.images import ImageStore

MakeRegistry = Callable[..., RunningRegistry]


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def htpasswd(tmp_path: Path) -> Path:
    path = tmp_path / "users.htpasswd"
    lines = [f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(4)).decode().replace('$2b$', '$2y$')}"
             for u, p in (("alice", "wonder"), ("bob", "builder"))]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "docker"
    monkeypatch.setenv("DOCKER_CONFIG", str(path))
    return path


def rules(tmp_path: Path, htpasswd: Path, **extra: object) -> Path:
    config = {
        "htpasswd": str(htpasswd),
        "access": [
            {"repository": "team/*", "users": ["alice"], "actions": ["pull", "push", "delete"]},
            {"repository": "*", "users": ["*"], "actions": ["pull"]},
            {"repository": "public/*", "users": ["anonymous"], "actions": ["pull"]},
        ],
        **extra,
    }
    path = tmp_path / "auth.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def test_basic_auth_with_htpasswd(make_registry: MakeRegistry, htpasswd: Path) -> None:
    reg = make_registry(htpasswd=htpasswd)
    status, headers, body = http(reg, "GET", "/v2/")
    assert (status, error_code(body)) == (401, "UNAUTHORIZED")
    assert headers["WWW-Authenticate"].startswith("Basic ")
    assert http(reg, "GET", "/v2/", headers=basic("alice", "wrong"))[0] == 401
    assert http(reg, "GET", "/v2/", headers=basic("mallory", "x"))[0] == 401
    assert http(reg, "GET", "/v2/", headers=basic("alice", "wonder"))[0] == 200


def test_client_uses_saved_credentials(make_registry: MakeRegistry, htpasswd: Path,
                                       store: ImageStore, docker_config: Path) -> None:
    reg = make_registry(htpasswd=htpasswd)
    ref = f"{reg.host}/team/app:1"
    add_image(store, [{"a": b"a"}], tags=(ref,))
    with pytest.raises(AuthFailed):
        asyncio.run(transfer.push(store, ref))
    credentials.store(reg.host, "alice", "wonder")
    assert asyncio.run(transfer.push(store, ref)).digest


def test_denied_push_changes_nothing(make_registry: MakeRegistry, htpasswd: Path,
                                     tmp_path: Path) -> None:
    reg = make_registry(auth_config=rules(tmp_path, htpasswd))
    bob = basic("bob", "builder")
    digest = "sha256:" + __import__("hashlib").sha256(b"x").hexdigest()
    status, _, body = http(reg, "POST", f"/v2/team/app/blobs/uploads/?digest={digest}", b"x", bob)
    assert (status, error_code(body)) == (403, "DENIED")
    status, _, body = http(reg, "POST", "/v2/team/app/blobs/uploads/", None, bob)
    assert status == 403
    status, _, body = http(reg, "PUT", "/v2/team/app/manifests/1", b"{}", bob)
    assert status == 403
    assert list(reg.registry.storage.content.digests()) == []
    assert list(reg.registry.storage.uploads()) == []
    # alice may push there
    alice = basic("alice", "wonder")
    assert http(reg, "POST", f"/v2/team/app/blobs/uploads/?digest={digest}", b"x", alice)[0] == 201
    # bob may pull it, anonymous may not (only public/*)
    assert http(reg, "GET", f"/v2/team/app/blobs/{digest}", None, bob)[0] == 200
    assert http(reg, "GET", f"/v2/team/app/blobs/{digest}")[0] == 401
    assert http(reg, "HEAD", f"/v2/team/app/blobs/{digest}", None, bob)[0] == 200
    assert http(reg, "HEAD", f"/v2/team/app/blobs/{digest}")[0] == 401
    # bob may not delete
    assert http(reg, "DELETE", f"/v2/team/app/blobs/{digest}", None, bob)[0] == 403
    assert http(reg, "GET", f"/v2/team/app/blobs/{digest}", None, bob)[0] == 200
    # a mount needs pull on the source and push on the target
    status, _, _ = http(reg, "POST", f"/v2/team/b/blobs/uploads/?mount={digest}&from=team/app",
                        None, alice)
    assert status == 201
    assert http(reg, "POST", f"/v2/public/x/blobs/uploads/?mount={digest}&from=team/app")[0] == 401


def test_anonymous_pull_when_configured(make_registry: MakeRegistry, htpasswd: Path,
                                        tmp_path: Path) -> None:
    config = tmp_path / "anon.yaml"
    config.write_text(f"htpasswd: {htpasswd}\nanonymous_pull: true\n")
    reg = make_registry(auth_config=config)
    digest = "sha256:" + __import__("hashlib").sha256(b"x").hexdigest()
    assert http(reg, "POST", f"/v2/a/blobs/uploads/?digest={digest}", b"x",
                basic("bob", "builder"))[0] == 201
    assert http(reg, "GET", "/v2/")[0] == 200
    assert http(reg, "GET", f"/v2/a/blobs/{digest}")[0] == 200
    assert http(reg, "POST", "/v2/a/blobs/uploads/")[0] == 401


def _token(reg: RunningRegistry, scope: str, auth: dict[str, str] | None = None,
           service: str = "test-registry") -> str:
    status, _, body = http(reg, "GET", f"/token?service={service}&scope={scope}", None, auth)
    assert status == 200, body
    return str(json.loads(body)["token"])


def test_token_flow(make_registry: MakeRegistry, htpasswd: Path, tmp_path: Path) -> None:
    reg = make_registry(auth_config=rules(tmp_path, htpasswd, token={"service": "test-registry"}))
    status, headers, _ = http(reg, "GET", "/v2/team/app/tags/list")
    assert status == 401
    challenge = headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="http://127.0.0.1:')
    assert 'service="test-registry"' in challenge and 'scope="repository:team/app:pull"' in challenge
    # basic credentials are not accepted directly in the token flow
    assert http(reg, "GET", "/v2/team/app/tags/list", None, basic("alice", "wonder"))[0] == 401
    assert http(reg, "GET", "/token?service=test-registry", None, basic("alice", "nope"))[0] == 401
    push = _token(reg, "repository:team/app:pull,push", basic("alice", "wonder"))
    digest = "sha256:" + __import__("hashlib").sha256(b"x").hexdigest()
    bearer = {"Authorization": f"Bearer {push}"}
    assert http(reg, "POST", f"/v2/team/app/blobs/uploads/?digest={digest}", b"x", bearer)[0] == 201
    # bob asks for push and gets pull only
    bobs = _token(reg, "repository:team/app:pull,push", basic("bob", "builder"))
    status, headers, _ = http(reg, "POST", "/v2/team/app/blobs/uploads/", None,
                              {"Authorization": f"Bearer {bobs}"})
    assert status == 401 and 'error="insufficient_scope"' in headers["WWW-Authenticate"]
    assert http(reg, "GET", f"/v2/team/app/blobs/{digest}", None,
                {"Authorization": f"Bearer {bobs}"})[0] == 200
    # a token for another repository, another service, or tampered with, grants nothing
    other = _token(reg, "repository:team/other:pull", basic("alice", "wonder"))
    assert http(reg, "GET", f"/v2/team/app/blobs/{digest}", None,
                {"Authorization": f"Bearer {other}"})[0] == 401
    foreign = _token(reg, "repository:team/app:pull", basic("alice", "wonder"), service="elsewhere")
    assert http(reg, "GET", f"/v2/team/app/blobs/{digest}", None,
                {"Authorization": f"Bearer {foreign}"})[0] == 401
    tampered = push[:-4] + ("AAAA" if not push.endswith("AAAA") else "BBBB")
    assert http(reg, "GET", f"/v2/team/app/blobs/{digest}", None,
                {"Authorization": f"Bearer {tampered}"})[0] == 401


def test_client_push_and_pull_through_the_token_flow(make_registry: MakeRegistry, htpasswd: Path,
                                                     tmp_path: Path, store: ImageStore,
                                                     docker_config: Path) -> None:
    reg = make_registry(auth_config=rules(tmp_path, htpasswd, token=True))
    ref = f"{reg.host}/team/app:1"
    add_image(store, [{"a": b"a"}], tags=(ref,))
    credentials.store(reg.host, "alice", "wonder")
    asyncio.run(transfer.push(store, ref))
    store.tag(ref, f"{reg.host}/team/copy:1")
    report = asyncio.run(transfer.push(store, f"{reg.host}/team/copy:1"))
    assert len(report.mounted) == 2  # the mount's wider scope got its own token
    credentials.erase(reg.host)
    other = ImageStore(tmp_path / "other")
    with pytest.raises(AuthFailed):
        asyncio.run(transfer.pull(other, ref))
    credentials.store(reg.host, "bob", "builder")
    assert asyncio.run(transfer.pull(other, ref)).image is not None
    other.db.close()


def test_tls(make_registry: MakeRegistry, tmp_path: Path, store: ImageStore) -> None:
    from helpers.regserver import self_signed

    cert, key = self_signed(tmp_path)
    from portside.registry.server import tls_context

    reg = make_registry(ssl_context=tls_context(cert, key))
    ref = f"{reg.host}/team/app:1"
    add_image(store, [{"a": b"a"}], tags=(ref,))

    async def ping(insecure: bool) -> str:
        async with RegistryClient(reg.host, insecure=insecure) as client:
            client.base = client.base.with_scheme("https")
            await client.check()
            return client.base.scheme

    assert asyncio.run(ping(True)) == "https"
    from portside.registry.client import ConnectError

    with pytest.raises(ConnectError, match="certificate"):
        asyncio.run(ping(False))  # an unknown CA is refused without --insecure


def test_credentials_file(docker_config: Path) -> None:
    docker_config.mkdir()
    (docker_config / "config.json").write_text(json.dumps({"auths": {}, "psFormat": "x"}))
    assert credentials.get("reg.example:5000") is None
    path = credentials.store("reg.example:5000", "alice", "s3:cret")
    data = json.loads(path.read_text())
    assert data["psFormat"] == "x"
    assert base64.b64decode(data["auths"]["reg.example:5000"]["auth"]) == b"alice:s3:cret"
    assert path.stat().st_mode & 0o777 == 0o600
    assert credentials.get("reg.example:5000") == ("alice", "s3:cret")
    assert credentials.erase("reg.example:5000") is True
    assert credentials.get("reg.example:5000") is None
    assert credentials.erase("reg.example:5000") is False
