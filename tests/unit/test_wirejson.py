"""The client's JSON (the C accelerators without `import json`) agrees with `json`."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portside.client import wirejson

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@given(values)
def test_round_trips_like_json(value: object) -> None:
    text = wirejson.dumps(value)
    assert json.loads(text) == value
    assert wirejson.loads(text) == value
    assert wirejson.loads(json.dumps(value).encode()) == value


@given(st.text(max_size=40))
def test_any_text_either_parses_as_json_does_or_is_a_value_error(text: str) -> None:
    try:
        expected = json.loads(text)
    except ValueError:
        with pytest.raises(ValueError):
            wirejson.loads(text)
        return
    # Compared as text: NaN, which JSON allows as in Python, is not equal to itself.
    assert json.dumps(wirejson.loads(text)) == json.dumps(expected)


def test_what_is_not_json_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="set"):
        wirejson.dumps({"a": {1, 2}})
