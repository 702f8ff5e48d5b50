"""Stage 2: interpolation rules, by example and by property."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portside.compose.errors import ComposeError
from portside.compose.interpolate import interpolate, substitute
from portside.compose.tags import Override

ENV = {"SET": "value", "EMPTY": ""}
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
plain = st.text(st.characters(exclude_characters="${}", exclude_categories=["Cs"]),
                max_size=20)


@pytest.mark.parametrize("text,expected", [
    ("$SET", "value"), ("${SET}", "value"), ("a${SET}b", "avalueb"), ("$SET-x", "value-x"),
    ("${UNSET:-dflt}", "dflt"), ("${EMPTY:-dflt}", "dflt"), ("${EMPTY-dflt}", ""),
    ("${UNSET-dflt}", "dflt"), ("${SET:-dflt}", "value"),
    ("${SET:+alt}", "alt"), ("${EMPTY:+alt}", ""), ("${EMPTY+alt}", "alt"), ("${UNSET+alt}", ""),
    ("${SET:?boom}", "value"), ("${EMPTY?boom}", ""),
    ("$$", "$"), ("$${SET}", "${SET}"), ("$$SET", "$SET"), ("cost: $$5", "cost: $5"),
    ("${UNSET:-${SET}}", "value"), ("${UNSET:-a${UNSET2:-b}c}", "abc"),
    ("${UNSET:-}", ""), ("${UNSET}", ""), ("no dollars", "no dollars"),
])
def test_examples(text: str, expected: str) -> None:
    assert substitute(text, ENV) == expected


@pytest.mark.parametrize("text,message", [
    ("${UNSET:?set it}", "required variable UNSET is missing a value: set it"),
    ("${EMPTY:?}", "required variable EMPTY is missing a value"),
    ("${UNSET?}", "required variable UNSET is missing a value"),
    ("${SET", 'invalid interpolation format "${SET": unterminated "${"'),
    ("$1", 'invalid interpolation format "$1": use "$$" for a literal "$"'),
    ("a $", 'invalid interpolation format "a $": use "$$" for a literal "$"'),
    ("${}", 'invalid interpolation format "${}": bad variable name in "${}"'),
    ("${A:x}", 'invalid interpolation format "${A:x}": unknown operator in "${A:x}"'),
])
def test_errors_name_file_and_key(text: str, message: str) -> None:
    with pytest.raises(ComposeError) as err:
        interpolate({"services": {"web": {"image": text}}}, ENV, "compose.yaml")
    assert str(err.value) == f"compose.yaml: services.web.image: {message}"


def test_unset_variable_warns() -> None:
    warnings: list[str] = []
    assert substitute("x${NOPE}y", {}, warn=warnings.append) == "xy"
    assert warnings == ['the "NOPE" variable is not set; defaulting to a blank string']


def test_tree_keeps_keys_and_non_strings() -> None:
    data = {"$KEY": ["$SET", 1, True, None, {"k": "${SET}"}], "o": Override("$SET")}
    assert interpolate(data, ENV) == {"$KEY": ["value", 1, True, None, {"k": "value"}],
                                      "o": Override("value")}


@given(plain)
def test_escaped_text_comes_back(text: str) -> None:
    assert substitute(text.replace("$", "$$"), {}) == text


@given(st.text(max_size=30))
def test_any_text_escaped_comes_back(text: str) -> None:
    assert substitute(text.replace("$", "$$"), {"A": "b"}) == text


@given(names, plain, st.text(max_size=20))
def test_defaults(name: str, default: str, value: str) -> None:
    assert substitute(f"${{{name}:-{default}}}", {}) == default
    assert substitute(f"${{{name}-{default}}}", {}) == default
    env = {name: value}
    assert substitute(f"${{{name}-{default}}}", env) == value
    assert substitute(f"${{{name}:-{default}}}", env) == (value or default)
    assert substitute(f"${{{name}:+{default}}}", env) == (default if value else "")


@given(names, st.text(max_size=20))
def test_values_are_not_interpolated_again(name: str, value: str) -> None:
    assert substitute(f"<${name}>", {name: value}) == f"<{value}>"
    assert substitute(f"<${{{name}}}>", {name: value}) == f"<{value}>"


@given(names, plain)
def test_required(name: str, message: str) -> None:
    with pytest.raises(ComposeError, match=f"required variable {name} is missing a value"):
        substitute(f"${{{name}:?{message}}}", {})
    assert substitute(f"${{{name}:?{message}}}", {name: "x"}) == "x"


@given(st.text(max_size=40))
def test_never_crashes(text: str) -> None:
    with contextlib.suppress(ComposeError):
        substitute(text, ENV)
