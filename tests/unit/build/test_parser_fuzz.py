"""Hostile input: the parser raises nothing but DockerfileError, whatever the text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from portside.build.errors import DockerfileError
from portside.build.instructions import KEYWORDS, parse
from portside.build.shellwords import SubstitutionError, expand, expand_words

_pieces = st.sampled_from(
    [
        *KEYWORDS,
        "\n",
        " ",
        "\\",
        "`",
        "#",
        "# escape=`\n",
        "<<EOF",
        "<<-'X'",
        "EOF",
        "X",
        "\t",
        "[",
        "]",
        '"',
        "'",
        "--from=",
        "--mount=type=",
        "=",
        "AS",
        "$",
        "${",
        "}",
        ":-",
        "CMD",
        "NONE",
        "--interval=",
        "a",
        "1",
        "{",
        ",",
        "\r\n",
    ]
)
_text = st.one_of(st.text(max_size=200), st.lists(_pieces, max_size=40).map("".join))


@settings(max_examples=400, deadline=None)
@given(_text)
def test_random_text_only_raises_dockerfile_error(text: str) -> None:
    try:
        parse(text, "Dockerfile")
    except DockerfileError as exc:
        assert str(exc).startswith("Dockerfile")
        assert "\n" not in str(exc)


@settings(max_examples=300, deadline=None)
@given(_text)
def test_random_words_only_raise_substitution_error(text: str) -> None:
    env = {"A": "x y", "E": ""}
    for escape in ("\\", "`"):
        try:
            expand(text, env, escape)
            expand_words(text, env, escape)
        except SubstitutionError:
            pass
