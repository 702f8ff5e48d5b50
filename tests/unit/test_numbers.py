"""Digits as Docker reads them: a check that passes means int() works, ASCII only."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portside.engine.options import parse_restart
from portside.errors import PortsideError
from portside.numbers import is_digits
from portside.runtime.ctrstate import parse_signal


@given(st.text(max_size=8))
def test_what_passes_is_ascii_and_int_reads_it(text: str) -> None:
    if is_digits(text):
        assert text.isascii()
        assert int(text) >= 0
    else:
        assert not text or not all("0" <= c <= "9" for c in text)


@pytest.mark.parametrize("text", ["¹", "²3", "٣", "１"])
def test_other_digits_are_refused(text: str) -> None:
    assert not is_digits(text)


def test_a_superscript_signal_or_restart_count_is_a_clear_error() -> None:
    with pytest.raises(PortsideError):
        parse_signal("¹")
    with pytest.raises(PortsideError):
        parse_restart("on-failure:¹")
