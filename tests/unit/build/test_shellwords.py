"""Variable substitution as BuildKit does it."""

from __future__ import annotations

import pytest

from portside.build.shellwords import SubstitutionError, expand, expand_words, split_words

ENV = {"A": "x", "EMPTY": "", "SP": "a b", "P": "80 443"}


@pytest.mark.parametrize(
    ("word", "result"),
    [
        ("$A", "x"),
        ("${A}", "x"),
        ("pre${A}post", "prexpost"),
        ("$A$A", "xx"),
        ("$UNSET", ""),
        ("${UNSET:-d}", "d"),
        ("${EMPTY:-d}", "d"),
        ("${EMPTY-d}", ""),
        ("${UNSET-d}", "d"),
        ("${A:-d}", "x"),
        ("${A:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET+alt}", ""),
        ("${UNSET:-${A}y}", "xy"),
        ("'$A'", "$A"),
        ('"$A"', "x"),
        ('"a\\"b"', 'a"b'),
        ('"\\$A"', "$A"),
        ("\\$A", "$A"),
        ('"a\\nb"', "a\\nb"),
        ("a\\ b", "a b"),
        ("$", "$"),
        ("$-", "$-"),
        ("100%", "100%"),
        ('"${SP}"', "a b"),
        ("${A:?must}", "x"),
    ],
)
def test_expand(word: str, result: str) -> None:
    assert expand(word, ENV) == result


def test_backtick_escape() -> None:
    assert expand("`$A", ENV, "`") == "$A"
    assert expand("c:\\dir", ENV, "`") == "c:\\dir"


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("'open", "single-quote"),
        ('"open', "double-quote"),
        ("${A", "missing '}'"),
        ("${A!x}", "unsupported modifier (!)"),
        ("${}", "bad substitution"),
        ("${UNSET:?need it}", "UNSET: need it"),
        ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
    ],
)
def test_expand_errors(word: str, message: str) -> None:
    with pytest.raises(SubstitutionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        expand(word, ENV)


def test_words() -> None:
    assert expand_words("$P 22/udp 'a b'", ENV) == ["80", "443", "22/udp", "a b"]
    assert expand_words('"$P"', ENV) == ["80 443"]
    assert split_words('a="x y" b=z\\ w  c') == ['a="x y"', "b=z\\ w", "c"]


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    assert expand("${A:-" * 50 + "x" + "}" * 50, {}) == "x"
    with pytest.raises(SubstitutionError, match="nested more than"):
        expand("${A:-" * 5000 + "x" + "}" * 5000, {})
