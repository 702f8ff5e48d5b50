""".dockerignore rules: Docker's documented cases, and properties over random paths."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portside.build.dockerignore import Matcher, clean, parse

# (patterns, path, ignored) — cases from Docker's documentation and its pattern matcher.
KNOWN = [
    ("*/temp*", "somedir/temporary.txt", True),
    ("*/temp*", "somedir/temp", True),
    ("*/temp*", "temp", False),
    ("*/*/temp*", "somedir/subdir/temporary.txt", True),
    ("*/*/temp*", "somedir/temporary.txt", False),
    ("temp?", "tempa", True),
    ("temp?", "temp", False),
    ("temp?", "tempab", False),
    ("**/*.go", "main.go", True),
    ("**/*.go", "a/b/c/main.go", True),
    ("**/*.go", "a/main.py", False),
    ("*.md\n!README.md", "README.md", False),
    ("*.md\n!README.md", "CHANGES.md", True),
    ("*.md\n!README*.md\nREADME-secret.md", "README-secret.md", True),
    ("*.md\n!README*.md\nREADME-secret.md", "README-public.md", False),
    ("*.md", "docs/a.md", False),
    ("/build", "build", True),
    ("./build", "build/out/x", True),
    ("build/", "build/x", True),
    ("node_modules", "node_modules/a/b.js", True),
    ("node_modules", "src/node_modules", False),
    ("docs/**/*.md", "docs/a.md", True),
    ("docs/**/*.md", "docs/x/y/a.md", True),
    ("docs/**/*.md", "other/a.md", False),
    ("**", "anything/at/all", True),
    ("a/**", "a", False),
    ("a/**", "a/b/c", True),
    ("a/**", "ab", False),
    ("[a-c].txt", "b.txt", True),
    ("[a-c].txt", "d.txt", False),
    ("[^a-c].txt", "d.txt", True),
    ("\\*.txt", "*.txt", True),
    ("\\*.txt", "a.txt", False),
    ("# comment\n\n  spaced  ", "spaced", True),
    ("dir\n!dir/keep", "dir/keep", False),
    ("dir\n!dir/keep", "dir/other", True),
    ("../x", "x", True),
]


@pytest.mark.parametrize(("patterns", "path", "ignored"), KNOWN)
def test_known_cases(patterns: str, path: str, ignored: bool) -> None:
    assert Matcher(parse(patterns)).ignored(path) is ignored


def test_clean() -> None:
    assert clean("/a/./b/../c/") == "a/c"
    assert clean("./") == ""
    assert clean("../../etc") == "etc"


_names = st.text(alphabet="abcxyz019_-.", min_size=1, max_size=6).filter(
    lambda s: s not in (".", "..")
)
_paths = st.lists(_names, min_size=1, max_size=4).map("/".join)


@settings(max_examples=200, deadline=None)
@given(_paths, _names)
def test_a_literal_path_ignores_itself_and_its_children(path: str, child: str) -> None:
    m = Matcher(parse(path))
    assert m.ignored(path)
    assert m.ignored(f"{path}/{child}")
    assert Matcher(parse("/" + path)).ignored(path)
    assert Matcher(parse("./" + path)).ignored(path)


@settings(max_examples=200, deadline=None)
@given(_paths, _paths)
def test_the_last_matching_rule_wins(path: str, other: str) -> None:
    assert not Matcher(parse(f"{path}\n!{path}")).ignored(path)
    assert Matcher(parse(f"!{path}\n{path}")).ignored(path)
    assert Matcher(parse("**")).ignored(other)
    if not other.startswith(path.split("/")[0]):
        assert not Matcher(parse(path)).ignored(other) or other.split("/")[0] == path.split("/")[0]


@settings(max_examples=100, deadline=None)
@given(_paths)
def test_star_matches_one_component(path: str) -> None:
    depth = path.count("/") + 1
    m = Matcher(parse("/".join(["*"] * depth)))
    assert m.ignored(path)
    assert not Matcher(parse("/".join(["*"] * (depth + 1)))).ignored(path)


_pattern_parts = st.lists(
    st.text(alphabet="ab*?", min_size=1, max_size=4).filter(lambda p: "**" not in p),  # ** is not
    min_size=1,  # filepath.Match's: it has its own cases above
    max_size=3,
)
_path_parts = st.lists(st.text(alphabet="ab", min_size=1, max_size=4), min_size=1, max_size=3)


@settings(max_examples=300, deadline=None)
@given(_pattern_parts, _path_parts)
def test_star_and_question_mark_match_like_filepath_match(
    pattern: list[str], path: list[str]
) -> None:
    """Reference: Go's filepath.Match matches component by component, `*` and `?` never
    crossing a `/`; for such patterns that is fnmatch applied to each component."""
    import fnmatch

    compiled = parse("/".join(pattern))[0].regex
    expected = len(pattern) == len(path) and all(
        fnmatch.fnmatchcase(c, p) for c, p in zip(path, pattern, strict=True)
    )
    assert bool(compiled.match("/".join(path))) == expected
