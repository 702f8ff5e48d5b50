"""Detach keys: Docker's syntax, and a detector that passes everything else on."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portside.engine.detachkeys import Detector, for_stream, parse
from portside.errors import InvalidArgument


def test_docker_syntax():
    assert parse("ctrl-p,ctrl-q") == b"\x10\x11"
    assert parse("ctrl-P, q") == b"\x10q"
    assert parse("ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_") == bytes([0, 27, 28, 29, 30, 31])
    assert parse("a") == b"a"


@pytest.mark.parametrize("bad", ["", "ctrl-", "ctrl-1", "ab", "ctrl-pq", "é"])
def test_bad_keys_are_refused_with_dockers_message(bad):
    with pytest.raises(InvalidArgument, match=r"Invalid detach keys \(.*\) provided"):
        parse(bad)


def test_only_an_attached_tty_is_watched():
    assert for_stream(tty=False, stdin=True, text=None) is None
    assert for_stream(tty=True, stdin=False, text=None) is None
    assert for_stream(tty=True, stdin=True, text=None) == b"\x10\x11"


def test_the_sequence_across_reads_detaches_and_a_broken_one_is_passed_on():
    d = Detector(b"\x10\x11")
    assert d.feed(b"ls\x10") == (b"ls", False)
    assert d.feed(b"x") == (b"\x10x", False)
    assert d.feed(b"\x10\x10") == (b"\x10", False)
    assert d.feed(b"\x11rest") == (b"", True)


@given(st.lists(st.binary(max_size=20), max_size=10))
def test_without_the_whole_sequence_every_byte_goes_on_in_order(chunks):
    keys = b"\x10\x11"
    data = b"".join(chunks)
    d = Detector(keys)
    out, detached = b"", False
    for chunk in chunks:
        passed, detached = d.feed(chunk)
        out += passed
        if detached:
            break
    if keys in data:
        assert detached and out == data[:data.index(keys)]
    else:
        assert not detached
        held = keys[:d.held]
        assert out + held == data
