"""`.env` / env_file parsing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portside.compose.envfile import parse
from portside.compose.errors import ComposeError


def test_syntax() -> None:
    text = "\n".join([
        "# comment", "", "A=1", "export B=two", "C = spaced ", "D='single $A # kept'",
        'E="double\\n${A}"', "F=unquoted # comment", "G", "H=${A}-${MISSING:-x}", "I=",
        'J="multi', 'line"', "K=a#b",
    ])
    assert parse(text, ".env") == {
        "A": "1", "B": "two", "C": "spaced", "D": "single $A # kept", "E": "double\n1",
        "F": "unquoted", "G": None, "H": "1-x", "I": "", "J": "multi\nline", "K": "a#b"}


def test_lookup_wins_over_the_file_in_references() -> None:
    assert parse("A=file\nB=${A}", ".env", {"A": "env"})["B"] == "env"


@pytest.mark.parametrize("text,message", [
    ("1A=x", '.env: line 1: invalid variable name "1A"'),
    ("A='open", ".env: line 1: unterminated single quote"),
    ('A="open', ".env: line 1: unterminated double quote"),
])
def test_errors(text: str, message: str) -> None:
    with pytest.raises(ComposeError) as err:
        parse(text, ".env")
    assert str(err.value) == message


@given(st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True),
                       st.text(st.characters(blacklist_characters="'\r\n",
                                             blacklist_categories=("Cs", "Zl", "Zp")),
                               max_size=15), max_size=5))
def test_single_quoted_round_trip(values: dict[str, str]) -> None:
    text = "\n".join(f"{k}='{v}'" for k, v in values.items())
    assert parse(text, ".env") == values
