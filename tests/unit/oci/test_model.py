from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portside.errors import InvalidArgument
from portside.oci import mediatypes as mt
from portside.oci.model import Index, Manifest, Platform, parse_document

D = "sha256:" + "a" * 64


def manifest(**over: object) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": D, "size": 10},
        "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": D, "size": 5}],
    }
    doc.update(over)
    return json.dumps(doc).encode()


def test_manifest_round_trip() -> None:
    doc = parse_document(manifest(), "m")
    assert isinstance(doc, Manifest) and doc.is_image
    assert parse_document(json.dumps(doc.to_json()).encode(), "m") == doc


def test_docker_schema2_is_read() -> None:
    doc = parse_document(
        manifest(mediaType=mt.DOCKER_MANIFEST,
                 config={"mediaType": mt.DOCKER_CONFIG, "digest": D, "size": 1}), "m")
    assert isinstance(doc, Manifest) and doc.media_type == mt.DOCKER_MANIFEST


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"schemaVersion": 1}, "schemaVersion"),
        ({"config": {"mediaType": mt.OCI_CONFIG, "digest": "sha256:xyz", "size": 1}}, "invalid digest"),
        ({"layers": [{"mediaType": mt.OCI_LAYER, "digest": D, "size": True}]}, "size"),
        ({"mediaType": "application/x-unknown"}, "unsupported media type"),
        ({"layers": "nope"}, "layers"),
    ],
)
def test_bad_manifests(over: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_document(manifest(**over), "manifest m")


def test_index_platform_selection() -> None:
    def entry(arch: str, variant: str = "") -> dict[str, object]:
        plat = {"os": "linux", "architecture": arch, **({"variant": variant} if variant else {})}
        return {"mediaType": mt.OCI_MANIFEST, "digest": "sha256:" + arch[0] * 64, "size": 1,
                "platform": plat}

    doc = parse_document(json.dumps({"schemaVersion": 2, "manifests": [
        entry("arm64", "v8"), entry("amd64")]}).encode(), "i")
    assert isinstance(doc, Index)
    assert doc.for_platform(Platform("linux", "amd64")).digest == "sha256:" + "a" * 64  # type: ignore[union-attr]
    assert doc.for_platform(Platform("linux", "s390x")) is None


@given(st.binary(max_size=2000))
def test_garbage_is_rejected_cleanly(data: bytes) -> None:
    with contextlib.suppress(InvalidArgument):
        parse_document(data, "fuzz")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.just(D),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["mediaType", "digest", "size", "platform", "os", "architecture",
                         "annotations", "manifests", "layers", "config", "subject", "urls"]),
        children, max_size=5),
    max_leaves=20,
)


@given(st.dictionaries(
    st.sampled_from(["schemaVersion", "mediaType", "config", "layers", "manifests", "subject",
                     "annotations", "artifactType"]),
    json_values, max_size=6,
).map(lambda d: {**d, "schemaVersion": 2}))
def test_structured_garbage_is_rejected_cleanly(doc: dict[str, object]) -> None:
    with contextlib.suppress(InvalidArgument):
        parse_document(json.dumps(doc).encode(), "fuzz")
