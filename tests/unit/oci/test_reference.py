from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portside.errors import InvalidArgument
from portside.oci import reference as refs


@pytest.mark.parametrize(
    ("text", "full", "familiar"),
    [
        ("busybox", "docker.io/library/busybox", "busybox"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("myorg/base:1.0", "docker.io/myorg/base:1.0", "myorg/base:1.0"),
        ("localhost:5000/team/app:1.0", "localhost:5000/team/app:1.0", "localhost:5000/team/app:1.0"),
        ("127.0.0.1:5000/app", "127.0.0.1:5000/app", "127.0.0.1:5000/app"),
        ("quay.io/a/b/c:v", "quay.io/a/b/c:v", "quay.io/a/b/c:v"),
    ],
)
def test_normalisation(text: str, full: str, familiar: str) -> None:
    ref = refs.parse(text)
    assert str(ref) == full
    assert ref.familiar() == familiar


def test_digest_reference() -> None:
    d = "sha256:" + "ab" * 32
    ref = refs.parse(f"app@{d}")
    assert ref.digest == d and ref.tag is None


@pytest.mark.parametrize(
    "text", ["", "UPPER", "a//b", "app:", "app:bad tag", "app@sha256:short", "-lead", "a/../b", "/abs"]
)
def test_bad_references(text: str) -> None:
    with pytest.raises(InvalidArgument):
        refs.parse(text)


def test_default_tag() -> None:
    assert refs.parse_tagged("busybox").tag == "latest"
    with pytest.raises(InvalidArgument):
        refs.parse_tagged("busybox@sha256:" + "0" * 64)


@given(st.text(max_size=300))
def test_any_text_parses_or_gives_a_clear_error(text: str) -> None:
    try:
        ref = refs.parse(text)
    except InvalidArgument as exc:
        assert "invalid reference" in str(exc)
        return
    assert refs.parse(str(ref)) == ref  # normalised form is stable
