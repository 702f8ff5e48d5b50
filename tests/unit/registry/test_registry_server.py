"""The distribution spec's endpoints, as a client sees them over HTTP."""

from __future__ import annotations

import hashlib
import json

from helpers.regserver import RunningRegistry, error_code, http

from portside.oci import mediatypes as mt


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(reg: RunningRegistry, repo: str, data: bytes) -> str:
    digest = sha(data)
    status, headers, _ = http(reg, "POST", f"/v2/{repo}/blobs/uploads/?digest={digest}", data)
    assert status == 201, status
    assert headers["Location"] == f"/v2/{repo}/blobs/{digest}"
    return digest


def image_manifest(reg: RunningRegistry, repo: str, layers: list[bytes], **extra: object) -> bytes:
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": push_blob(reg, repo, config),
                   "size": len(config)},
        "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": push_blob(reg, repo, x),
                    "size": len(x)} for x in layers],
        **extra,
    }
    return json.dumps(doc).encode()


def put_manifest(reg: RunningRegistry, repo: str, ref: str, body: bytes,
                 media_type: str = mt.OCI_MANIFEST) -> tuple[int, dict[str, str], bytes]:
    return http(reg, "PUT", f"/v2/{repo}/manifests/{ref}", body, {"Content-Type": media_type})


def test_base_endpoint_announces_the_api_version(reg: RunningRegistry) -> None:
    status, headers, body = http(reg, "GET", "/v2/")
    assert status == 200
    assert headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert json.loads(body) == {}


def test_monolithic_blob_push_then_get_head_and_range(reg: RunningRegistry) -> None:
    data = bytes(range(256)) * 100
    digest = push_blob(reg, "team/app", data)
    status, headers, body = http(reg, "GET", f"/v2/team/app/blobs/{digest}")
    assert (status, body, headers["Docker-Content-Digest"]) == (200, data, digest)
    status, headers, body = http(reg, "HEAD", f"/v2/team/app/blobs/{digest}")
    assert (status, headers["Content-Length"], body) == (200, str(len(data)), b"")
    status, headers, body = http(reg, "GET", f"/v2/team/app/blobs/{digest}", headers={"Range": "bytes=10-19"})
    assert (status, body) == (206, data[10:20])
    assert headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    # another repository does not see it
    status, _, body = http(reg, "GET", f"/v2/other/blobs/{digest}")
    assert (status, error_code(body)) == (404, "BLOB_UNKNOWN")


def test_blob_head_answers_the_get_headers_without_a_body(reg: RunningRegistry) -> None:
    data = b"head me" * 1000
    digest = push_blob(reg, "team/app", data)
    _, got, _ = http(reg, "GET", f"/v2/team/app/blobs/{digest}")
    status, headers, body = http(reg, "HEAD", f"/v2/team/app/blobs/{digest}")
    assert (status, body) == (200, b"")
    for name in ("Docker-Content-Digest", "Content-Length", "Content-Type", "Accept-Ranges",
                 "Docker-Distribution-API-Version"):
        assert headers[name] == got[name], name
    assert headers["Content-Length"] == str(len(data))
    # not linked to this repository: BLOB_UNKNOWN, status only (a HEAD has no body)
    status, headers, body = http(reg, "HEAD", f"/v2/other/blobs/{digest}")
    assert (status, body) == (404, b"")
    assert headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert http(reg, "HEAD", "/v2/team/app/blobs/sha256:abc")[0] == 400  # DIGEST_INVALID
    assert http(reg, "HEAD", f"/v2/team/app/blobs/{sha(b'never pushed')}")[0] == 404
    # linked, but the file is gone (swept underneath): unknown, not a 500
    reg.registry.storage.content.path(digest).unlink()
    assert http(reg, "HEAD", f"/v2/team/app/blobs/{digest}")[0] == 404


def test_monolithic_push_with_wrong_digest_leaves_nothing(reg: RunningRegistry) -> None:
    wrong = sha(b"something else")
    status, _, body = http(reg, "POST", f"/v2/a/blobs/uploads/?digest={wrong}", b"data")
    assert (status, error_code(body)) == (400, "DIGEST_INVALID")
    assert http(reg, "HEAD", f"/v2/a/blobs/{sha(b'data')}")[0] == 404
    assert not reg.registry.storage.content.exists(sha(b"data"))


def test_post_then_put_upload(reg: RunningRegistry) -> None:
    status, headers, _ = http(reg, "POST", "/v2/a/blobs/uploads/")
    assert status == 202 and headers["Docker-Upload-UUID"]
    location = headers["Location"]
    status, headers, _ = http(reg, "PUT", f"{location}?digest={sha(b'payload')}", b"payload")
    assert (status, headers["Docker-Content-Digest"]) == (201, sha(b"payload"))
    assert http(reg, "GET", f"/v2/a/blobs/{sha(b'payload')}")[2] == b"payload"


def test_chunked_upload_checks_order_and_reports_status(reg: RunningRegistry) -> None:
    data = b"0123456789" * 50
    _, headers, _ = http(reg, "POST", "/v2/a/blobs/uploads/")
    loc = headers["Location"]
    status, headers, _ = http(reg, "PATCH", loc, data[:100], {"Content-Range": "0-99"})
    assert (status, headers["Range"]) == (202, "0-99")
    # a chunk out of order is refused with 416 and changes nothing
    status, headers, _ = http(reg, "PATCH", loc, data[200:300], {"Content-Range": "200-299"})
    assert (status, headers["Range"]) == (416, "0-99")
    status, headers, _ = http(reg, "GET", loc)
    assert (status, headers["Range"], headers["Docker-Upload-UUID"]) == (204, "0-99", loc.rsplit("/", 1)[1])
    status, _, _ = http(reg, "PATCH", loc, data[100:], {"Content-Range": f"100-{len(data) - 1}"})
    assert status == 202
    status, _, _ = http(reg, "PUT", f"{loc}?digest={sha(data)}")
    assert status == 201
    assert http(reg, "GET", f"/v2/a/blobs/{sha(data)}")[2] == data
    # the finished upload is gone
    assert error_code(http(reg, "GET", loc)[2]) == "BLOB_UPLOAD_UNKNOWN"


def test_chunked_upload_resumes_from_a_restarted_server(reg: RunningRegistry) -> None:
    _, headers, _ = http(reg, "POST", "/v2/a/blobs/uploads/")
    loc = headers["Location"]
    http(reg, "PATCH", loc, b"first-", {"Content-Range": "0-5"})
    reg.registry.storage._hashing.clear()  # as after a restart: the hash state is rebuilt
    http(reg, "PATCH", loc, b"second", {"Content-Range": "6-11"})
    assert http(reg, "PUT", f"{loc}?digest={sha(b'first-second')}")[0] == 201


def test_upload_put_with_wrong_digest_is_refused(reg: RunningRegistry) -> None:
    _, headers, _ = http(reg, "POST", "/v2/a/blobs/uploads/")
    status, _, body = http(reg, "PUT", f"{headers['Location']}?digest={sha(b'x')}", b"y")
    assert (status, error_code(body)) == (400, "DIGEST_INVALID")
    assert not reg.registry.storage.content.exists(sha(b"y"))


def test_cancel_upload(reg: RunningRegistry) -> None:
    _, headers, _ = http(reg, "POST", "/v2/a/blobs/uploads/")
    assert http(reg, "DELETE", headers["Location"])[0] == 204
    assert http(reg, "GET", headers["Location"])[0] == 404
    assert list(reg.registry.storage.uploads()) == []


def test_cross_repository_mount(reg: RunningRegistry) -> None:
    digest = push_blob(reg, "src/app", b"layer")
    status, headers, _ = http(reg, "POST", f"/v2/dst/app/blobs/uploads/?mount={digest}&from=src/app")
    assert (status, headers["Location"]) == (201, f"/v2/dst/app/blobs/{digest}")
    assert http(reg, "GET", f"/v2/dst/app/blobs/{digest}")[2] == b"layer"
    # the source lacks it: an ordinary upload session instead
    status, headers, _ = http(reg, "POST", f"/v2/x/blobs/uploads/?mount={sha(b'nope')}&from=src/app")
    assert status == 202 and "/blobs/uploads/" in headers["Location"]


def test_manifest_put_get_head_by_tag_and_digest(reg: RunningRegistry) -> None:
    body = image_manifest(reg, "team/app", [b"l1", b"l2"])
    status, headers, _ = put_manifest(reg, "team/app", "1.0", body)
    digest = sha(body)
    assert (status, headers["Location"], headers["Docker-Content-Digest"]) == (
        201, f"/v2/team/app/manifests/{digest}", digest)
    for ref in ("1.0", digest):
        status, headers, got = http(reg, "GET", f"/v2/team/app/manifests/{ref}")
        assert (status, got, headers["Content-Type"], headers["Docker-Content-Digest"]) == (
            200, body, mt.OCI_MANIFEST, digest)
        status, headers, got = http(reg, "HEAD", f"/v2/team/app/manifests/{ref}")
        assert (status, got, headers["Content-Length"]) == (200, b"", str(len(body)))
    assert error_code(http(reg, "GET", "/v2/team/app/manifests/2.0")[2]) == "MANIFEST_UNKNOWN"


def test_manifest_naming_missing_blobs_is_refused(reg: RunningRegistry) -> None:
    body = image_manifest(reg, "a", [b"present"])
    doc = json.loads(body)
    doc["layers"].append({"mediaType": mt.OCI_LAYER_GZIP, "digest": sha(b"absent"), "size": 6})
    status, _, got = put_manifest(reg, "a", "t", json.dumps(doc).encode())
    assert (status, error_code(got)) == (404, "MANIFEST_BLOB_UNKNOWN")
    assert http(reg, "GET", "/v2/a/manifests/t")[0] == 404


def test_bad_and_oversize_manifests(reg: RunningRegistry) -> None:
    for bad in (b"{", b"[]", b'{"schemaVersion": 2, "mediaType": "x/y"}', b'{"schemaVersion": 1}'):
        status, _, got = put_manifest(reg, "a", "t", bad)
        assert (status, error_code(got)) == (400, "MANIFEST_INVALID"), bad
    status, _, got = put_manifest(reg, "a", "t", b" " * (4 * 1024 * 1024 + 1))
    assert (status, error_code(got)) == (413, "MANIFEST_INVALID")
    body = image_manifest(reg, "a", [b"l"])
    status, _, got = put_manifest(reg, "a", sha(b"not it"), body)
    assert (status, error_code(got)) == (400, "DIGEST_INVALID")
    assert reg.registry.storage.repositories() == []


def test_docker_schema2_manifest_and_manifest_list(reg: RunningRegistry) -> None:
    doc = json.loads(image_manifest(reg, "d", [b"layer"]))
    doc["mediaType"] = mt.DOCKER_MANIFEST
    doc["config"]["mediaType"] = mt.DOCKER_CONFIG
    doc["layers"][0]["mediaType"] = mt.DOCKER_LAYER_GZIP
    child = json.dumps(doc).encode()
    assert put_manifest(reg, "d", sha(child), child, mt.DOCKER_MANIFEST)[0] == 201
    index = json.dumps({"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST_LIST, "manifests": [
        {"mediaType": mt.DOCKER_MANIFEST, "digest": sha(child), "size": len(child),
         "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    assert put_manifest(reg, "d", "multi", index, mt.DOCKER_MANIFEST_LIST)[0] == 201
    status, headers, _ = http(reg, "GET", "/v2/d/manifests/multi")
    assert headers["Content-Type"] == mt.DOCKER_MANIFEST_LIST
    # an index naming a manifest the repository lacks
    missing = index.replace(sha(child).encode(), sha(b"x").encode())
    assert error_code(put_manifest(reg, "d", "bad", missing, mt.DOCKER_MANIFEST_LIST)[2]) == \
        "MANIFEST_BLOB_UNKNOWN"


def test_delete_manifest_by_tag_and_by_digest(reg: RunningRegistry) -> None:
    body = image_manifest(reg, "a", [b"l"])
    put_manifest(reg, "a", "one", body)
    put_manifest(reg, "a", "two", body)
    assert http(reg, "DELETE", "/v2/a/manifests/one")[0] == 202
    assert http(reg, "GET", "/v2/a/manifests/one")[0] == 404
    assert http(reg, "GET", "/v2/a/manifests/two")[0] == 200
    assert http(reg, "DELETE", f"/v2/a/manifests/{sha(body)}")[0] == 202
    assert http(reg, "GET", "/v2/a/manifests/two")[0] == 404
    assert http(reg, "GET", f"/v2/a/manifests/{sha(body)}")[0] == 404


def test_delete_blob(reg: RunningRegistry) -> None:
    digest = push_blob(reg, "a", b"blob")
    assert http(reg, "DELETE", f"/v2/a/blobs/{digest}")[0] == 202
    assert http(reg, "HEAD", f"/v2/a/blobs/{digest}")[0] == 404
    assert error_code(http(reg, "DELETE", f"/v2/a/blobs/{digest}")[2]) == "BLOB_UNKNOWN"


def test_tags_list_pagination_and_link_header(reg: RunningRegistry) -> None:
    body = image_manifest(reg, "a", [b"l"])
    names = ["v1", "v2", "v3", "latest", "alpha"]
    for tag in names:
        put_manifest(reg, "a", tag, body)
    status, _, got = http(reg, "GET", "/v2/a/tags/list")
    assert json.loads(got) == {"name": "a", "tags": sorted(names)}
    status, headers, got = http(reg, "GET", "/v2/a/tags/list?n=2")
    assert json.loads(got)["tags"] == ["alpha", "latest"]
    assert headers["Link"] == '</v2/a/tags/list?n=2&last=latest>; rel="next"'
    _, _, got = http(reg, "GET", "/v2/a/tags/list?n=2&last=latest")
    assert json.loads(got)["tags"] == ["v1", "v2"]
    assert error_code(http(reg, "GET", "/v2/nothing/tags/list")[2]) == "NAME_UNKNOWN"


def test_catalog_pagination(reg: RunningRegistry) -> None:
    for repo in ("b/x", "a/x", "c"):
        put_manifest(reg, repo, "t", image_manifest(reg, repo, []))
    assert json.loads(http(reg, "GET", "/v2/_catalog")[2]) == {"repositories": ["a/x", "b/x", "c"]}
    _, headers, got = http(reg, "GET", "/v2/_catalog?n=1&last=a/x")
    assert json.loads(got)["repositories"] == ["b/x"]
    assert "rel=\"next\"" in headers["Link"]


def test_referrers_with_subject_and_artifact_type_filter(reg: RunningRegistry) -> None:
    subject_body = image_manifest(reg, "a", [b"l"])
    put_manifest(reg, "a", "v1", subject_body)
    subject = {"mediaType": mt.OCI_MANIFEST, "digest": sha(subject_body), "size": len(subject_body)}
    empty = b"{}"
    push_blob(reg, "a", empty)
    referrers = []
    for kind in ("application/vnd.example.sig", "application/vnd.example.sbom"):
        doc = json.dumps({
            "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "artifactType": kind,
            "config": {"mediaType": mt.OCI_EMPTY, "digest": sha(empty), "size": 2},
            "layers": [], "subject": subject, "annotations": {"k": kind}}).encode()
        status, headers, _ = put_manifest(reg, "a", sha(doc), doc)
        assert (status, headers["OCI-Subject"]) == (201, sha(subject_body))
        referrers.append(sha(doc))
    status, headers, got = http(reg, "GET", f"/v2/a/referrers/{sha(subject_body)}")
    index = json.loads(got)
    assert headers["Content-Type"] == mt.OCI_INDEX
    assert {m["digest"] for m in index["manifests"]} == set(referrers)
    status, headers, got = http(
        reg, "GET", f"/v2/a/referrers/{sha(subject_body)}?artifactType=application/vnd.example.sbom")
    assert headers["OCI-Filters-Applied"] == "artifactType"
    only = json.loads(got)["manifests"]
    assert [(m["artifactType"], m["annotations"]) for m in only] == [
        ("application/vnd.example.sbom", {"k": "application/vnd.example.sbom"})]
    assert json.loads(http(reg, "GET", f"/v2/a/referrers/{sha(b'none')}")[2])["manifests"] == []
    assert error_code(http(reg, "GET", "/v2/a/referrers/sha256:zz")[2]) == "DIGEST_INVALID"


def test_names_with_path_tricks_are_invalid(reg: RunningRegistry) -> None:
    for path in ("/v2/../etc/manifests/x", "/v2/A/manifests/x", "/v2/a//b/manifests/x",
                 "/v2/a/./b/tags/list", "/v2/-a/blobs/uploads/", "/v2/%2e%2e/manifests/x"):
        status, _, body = http(reg, "GET", path)
        assert status in (400, 404), path
        assert error_code(body) in ("NAME_INVALID", "UNSUPPORTED"), path


def test_wrong_content_length_is_refused(reg: RunningRegistry) -> None:
    import socket

    digest = sha(b"abcdef")
    with socket.create_connection(("127.0.0.1", reg.port)) as s:
        s.sendall(f"POST /v2/a/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: x\r\n"
                  "Content-Length: 10\r\n\r\nabcdef".encode())
        s.shutdown(socket.SHUT_WR)
        s.settimeout(30)
        data = s.recv(65536)
    assert not data.startswith(b"HTTP/1.1 201")
    assert http(reg, "HEAD", f"/v2/a/blobs/{digest}")[0] == 404
    assert not reg.registry.storage.content.exists(digest)


def test_unsupported_methods(reg: RunningRegistry) -> None:
    status, _, body = http(reg, "PATCH", "/v2/a/manifests/x")
    assert (status, error_code(body)) == (405, "UNSUPPORTED")


def test_concurrent_uploads_of_one_blob(reg: RunningRegistry) -> None:
    from concurrent.futures import ThreadPoolExecutor

    data = bytes(range(256)) * 4096

    def chunked(_: int) -> int:
        headers = http(reg, "POST", "/v2/same/blobs/uploads/")[1]
        loc = headers["Location"]
        half = len(data) // 2
        http(reg, "PATCH", loc, data[:half], {"Content-Range": f"0-{half - 1}"})
        http(reg, "PATCH", loc, data[half:], {"Content-Range": f"{half}-{len(data) - 1}"})
        return http(reg, "PUT", f"{loc}?digest={sha(data)}")[0]

    def monolithic(_: int) -> int:
        return http(reg, "POST", f"/v2/same/blobs/uploads/?digest={sha(data)}", data)[0]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(chunked, range(4))) + list(pool.map(monolithic, range(4)))
    assert results == [201] * 8
    assert http(reg, "GET", f"/v2/same/blobs/{sha(data)}")[2] == data
    assert list(reg.registry.storage.uploads()) == []


def test_interrupted_chunk_leaves_nothing_visible_and_resumes(reg: RunningRegistry) -> None:
    import socket
    import time

    data = b"z" * 100_000
    _, headers, _ = http(reg, "POST", "/v2/a/blobs/uploads/")
    loc = headers["Location"]
    with socket.create_connection(("127.0.0.1", reg.port)) as s:
        s.sendall(f"PATCH {loc} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n".encode()
                  + data[:40_000])
        time.sleep(0.5)  # let the server take in what was sent before the connection drops
    assert http(reg, "HEAD", f"/v2/a/blobs/{sha(data)}")[0] == 404
    for _ in range(600):  # the server notices the drop asynchronously
        status, headers, _ = http(reg, "GET", loc)
        if headers.get("Range") == "0-39999":
            break
        time.sleep(0.05)
    assert (status, headers["Range"]) == (204, "0-39999")
    assert http(reg, "PATCH", loc, data[40_000:], {"Content-Range": f"40000-{len(data) - 1}"})[0] == 202
    assert http(reg, "PUT", f"{loc}?digest={sha(data)}")[0] == 201
    assert http(reg, "GET", f"/v2/a/blobs/{sha(data)}")[2] == data


def test_manifest_with_wrong_blob_sizes_is_refused(reg: RunningRegistry) -> None:
    doc = json.loads(image_manifest(reg, "a", [b"layer"]))
    doc["layers"][0]["size"] = 999
    status, _, body = put_manifest(reg, "a", "t", json.dumps(doc).encode())
    assert (status, error_code(body)) == (400, "MANIFEST_INVALID")
    assert http(reg, "GET", "/v2/a/manifests/t")[0] == 404


def test_an_upload_takes_one_writer_at_a_time(reg: RunningRegistry) -> None:
    import socket
    import time

    data = b"q" * 1000
    _, headers, _ = http(reg, "POST", "/v2/a/blobs/uploads/")
    loc = headers["Location"]
    with socket.create_connection(("127.0.0.1", reg.port)) as s:
        s.sendall(f"PATCH {loc} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n".encode()
                  + data[:500])
        for _ in range(1500):  # wait until the server is inside the first PATCH
            if reg.registry.storage.busy:
                break
            time.sleep(0.02)
        status, _, body = http(reg, "PATCH", loc, b"intruder")
        assert (status, error_code(body)) == (400, "BLOB_UPLOAD_INVALID")
        assert http(reg, "DELETE", loc)[0] == 400
        s.sendall(data[500:])
        assert s.recv(100).startswith(b"HTTP/1.1 202")
    assert http(reg, "PUT", f"{loc}?digest={sha(data)}")[0] == 201
    assert http(reg, "GET", f"/v2/a/blobs/{sha(data)}")[2] == data
