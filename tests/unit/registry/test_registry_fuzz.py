"""Hostile input: parsers raise only spec errors, handlers never answer 500 nor change the store."""

from __future__ import annotations

import hashlib
import json
import socket
from urllib.parse import quote

import pytest
from helpers.regserver import RunningRegistry, http
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portside.registry import protocol
from portside.registry.errors import CODES, RegistryError

text = st.text(max_size=300)
fuzz = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@given(text)
@settings(max_examples=500)
def test_parse_route_accepts_only_valid_names(tail: str) -> None:
    try:
        route = protocol.parse_route(tail)
    except RegistryError as exc:
        assert exc.code == "NAME_INVALID"
        return
    if route is not None and route.name:
        assert protocol.NAME_RE.fullmatch(route.name)
        assert ".." not in route.name and not route.name.startswith("/")


@given(text)
@settings(max_examples=500)
def test_content_range_parser(value: str) -> None:
    try:
        start, end = protocol.parse_content_range(value)
    except RegistryError as exc:
        assert exc.code in CODES
        return
    assert 0 <= start <= end


@given(st.integers(0, 2**40), st.integers(0, 2**40))
def test_content_range_round_trip(a: int, b: int) -> None:
    start, end = min(a, b), max(a, b)
    assert protocol.parse_content_range(f"{start}-{end}") == (start, end)
    assert protocol.parse_content_range(f"bytes {start}-{end}/*") == (start, end)


@given(text)
@settings(max_examples=500)
def test_reference_and_digest_validation(value: str) -> None:
    for check in (protocol.validate_reference, protocol.validate_digest,
                  protocol.validate_upload_id, protocol.validate_name):
        try:
            assert check(value) == value
        except RegistryError as exc:
            assert exc.code in CODES


@given(st.one_of(st.none(), text), st.one_of(st.none(), text))
def test_page_parameters(n: str | None, last: str | None) -> None:
    try:
        count, _ = protocol.parse_page(n, last)
    except RegistryError as exc:
        assert exc.http_status == 400
        return
    assert count is None or 0 <= count <= protocol.MAX_PAGE


def _snapshot(reg: RunningRegistry) -> tuple[object, ...]:
    storage = reg.registry.storage
    return (
        sorted(storage.content.digests()),
        storage.db.execute("SELECT * FROM manifests ORDER BY repo, digest").fetchall(),
        storage.db.execute("SELECT * FROM tags ORDER BY repo, tag").fetchall(),
    )


def _raw(reg: RunningRegistry, request: bytes, complete: bool) -> int:
    """Send raw bytes; half-close first unless the request is complete (else it would wait)."""
    with socket.create_connection(("127.0.0.1", reg.port), timeout=30) as s:
        s.sendall(request)
        if not complete:
            s.shutdown(socket.SHUT_WR)
        head = s.recv(65536)
    if not head:
        return 0
    return int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0


segment = st.text(alphabet="abcAZ019._-/:%@?&=~ \t\\", max_size=40)


@pytest.fixture
def seeded(reg: RunningRegistry) -> RunningRegistry:
    data = b"seed"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    http(reg, "POST", f"/v2/seed/blobs/uploads/?digest={digest}", data)
    return reg


@given(method=st.sampled_from(["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"]),
       name=segment, kind=st.sampled_from(["manifests", "blobs", "blobs/uploads", "tags/list",
                                           "referrers", "_catalog"]),
       ref=segment, query=segment)
@fuzz
def test_read_requests_never_fail_with_500(seeded: RunningRegistry, method: str, name: str,
                                           kind: str, ref: str, query: str) -> None:
    path = f"/v2/{quote(name, safe='/:@')}/{kind}/{quote(ref, safe=':@')}?{quote(query, safe='=&')}"
    before = _snapshot(seeded)
    status, _, _ = http(seeded, method, path, body=b"" if method in ("PUT", "POST", "PATCH") else None)
    assert status < 500, path
    if status >= 400:
        assert _snapshot(seeded) == before


@given(rng=st.text(alphabet="bytes=0123456789-,* \t", max_size=40))
@fuzz
def test_hostile_range_headers(seeded: RunningRegistry, rng: str) -> None:
    digest = "sha256:" + hashlib.sha256(b"seed").hexdigest()
    try:
        status, _, body = http(seeded, "GET", f"/v2/seed/blobs/{digest}", headers={"Range": rng})
    except ValueError:  # http.client refuses to send some header values at all
        return
    assert status in (200, 206, 416), (rng, status)
    if status == 206:
        assert body and set(body) <= set(b"seed")


@given(crange=st.text(alphabet="bytes=0123456789-/* ", max_size=30), body=st.binary(max_size=20))
@fuzz
def test_hostile_content_range_on_chunks(seeded: RunningRegistry, crange: str, body: bytes) -> None:
    _, headers, _ = http(seeded, "POST", "/v2/seed/blobs/uploads/")
    loc = headers["Location"]
    try:
        status, _, _ = http(seeded, "PATCH", loc, body, {"Content-Range": crange})
    except ValueError:
        return
    assert status in (202, 400, 416), (crange, status)
    http(seeded, "DELETE", loc)


@given(doc=st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["schemaVersion", "mediaType", "config", "layers", "manifests", "digest",
                         "size", "subject", "annotations", "urls", "platform", "artifactType"]),
        children, max_size=6),
    max_leaves=20))
@fuzz
def test_malformed_manifests_are_refused_cleanly(seeded: RunningRegistry, doc: object) -> None:
    before = _snapshot(seeded)
    status, _, _ = http(seeded, "PUT", "/v2/seed/manifests/fuzz", json.dumps(doc).encode(),
                        {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert 400 <= status < 500
    assert _snapshot(seeded) == before


@given(length=st.text(alphabet="0123456789-+ x", min_size=1, max_size=12), body=st.binary(max_size=30))
@fuzz
def test_hostile_content_length(seeded: RunningRegistry, length: str, body: bytes) -> None:
    # A repository per example: a request the server finishes after the client hung up
    # cannot show up in another example's checks.
    repo = f"cl/{hashlib.sha256(length.encode() + body).hexdigest()[:16]}"
    storage = seeded.registry.storage

    def linked() -> set[str]:
        rows = storage.db.execute("SELECT digest FROM blob_links WHERE repo = ?", (repo,))
        return {r[0] for r in rows}

    before = linked()
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    status = _raw(seeded, f"POST /v2/{repo}/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: x\r\n"
                          f"Content-Length: {length}\r\n\r\n".encode() + body,
                  complete=length.isdigit() and int(length) == len(body))
    assert status < 500
    added = linked() - before
    if status == 201 or added:  # only the announced, complete, verified body is ever stored
        assert added <= {digest}
        assert length.strip().isdigit() and int(length) == len(body)
        assert storage.content.read(digest) == body


@pytest.fixture
def guarded(make_registry, tmp_path):  # type: ignore[no-untyped-def]
    import bcrypt

    users = tmp_path / "users"
    users.write_text(f"alice:{bcrypt.hashpw(b'pw', bcrypt.gensalt(4)).decode()}\n")
    config = tmp_path / "auth.yaml"
    config.write_text(f"htpasswd: {users}\ntoken: {{service: fuzz}}\n")
    return make_registry("guarded", auth_config=config)


@given(scheme=st.sampled_from(["Basic", "Bearer", "basic", "Digest", ""]),
       value=st.text(max_size=200), method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]))
@fuzz
def test_hostile_credentials_are_refused_cleanly(guarded: RunningRegistry, scheme: str, value: str,
                                                 method: str) -> None:
    before = _snapshot(guarded)
    for path in ("/v2/", "/v2/a/blobs/uploads/", "/v2/a/manifests/t", "/token?scope=repository:a:push"):
        try:
            status, _, _ = http(guarded, method if path != "/token" else "GET", path, b"",
                                {"Authorization": f"{scheme} {value}"})
        except ValueError:  # a header http.client will not send
            return
        # 400: a header the HTTP parser itself rejects
        assert status in (400, 401, 404, 405) or (path.startswith("/token") and status == 200), (
            path, status)
    assert _snapshot(guarded) == before
