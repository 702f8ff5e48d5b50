"""Errors across the daemon's socket: the client raises the engine's class with its facts."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portside.engine.errors import StartFailed
from portside.engine.state import NoSuchContainer
from portside.errors import (
    BlobUnknown,
    DigestMismatch,
    ImageUnknown,
    InvalidArgument,
    PortsideError,
    from_wire,
    to_wire,
)


def _across(exc: PortsideError) -> PortsideError | None:
    return from_wire(json.loads(json.dumps(to_wire(exc))))


@pytest.mark.parametrize("exc", [
    BlobUnknown("sha256:" + "a" * 64, "app"),
    ImageUnknown("app:1"),
    DigestMismatch("sha256:" + "a" * 64, "sha256:" + "b" * 64, "layer"),
    NoSuchContainer("web"),
    InvalidArgument("bad flag"),
])
def test_same_class_message_and_facts(exc: PortsideError) -> None:
    got = _across(exc)
    assert type(got) is type(exc)
    assert str(got) == str(exc)
    assert vars(got) == vars(exc)
    assert got.exit_code == exc.exit_code and got.http_status == exc.http_status


def test_an_exit_code_set_by_the_engine_survives() -> None:
    err = StartFailed('exec: "nope": executable file not found in $PATH')
    err.exit_code = 127
    got = _across(err)
    assert isinstance(got, StartFailed) and got.exit_code == 127


def test_docker_clients_still_read_message() -> None:
    body = to_wire(ImageUnknown("app:1"))
    assert body["message"] == "image 'app:1' not found"


@pytest.mark.parametrize("name", ["os:system", "subprocess:Popen", "portside.errors:from_wire",
                                  "portside.nosuchmodule:X", "portside.errors:", "builtins:ValueError"])
def test_only_portside_error_classes_are_rebuilt(name: str) -> None:
    assert from_wire({"message": "m", "portside": {"class": name, "facts": {}}}) is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)


@given(json_values)
def test_any_body_gives_an_error_or_none(body: object) -> None:
    got = from_wire(body)
    assert got is None or isinstance(got, PortsideError)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=5))
def test_hostile_facts_do_not_break_the_class(facts: dict[str, object]) -> None:
    got = from_wire({"message": "x", "portside": {"class": "portside.errors:ImageUnknown",
                                                  "facts": facts}})
    assert isinstance(got, ImageUnknown) and str(got) == "x"


def test_exit_code_from_the_wire_must_be_a_number() -> None:
    got = from_wire({"message": "x", "portside": {"class": "portside.errors:ImageUnknown",
                                                  "facts": {"exit_code": "boom"}}})
    assert got is not None and got.exit_code == 1
