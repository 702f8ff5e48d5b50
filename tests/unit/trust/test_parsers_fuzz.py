"""Property tests of the trust parsers a user feeds: structure-test files and Dockerfiles
give findings or a one-line InvalidArgument, never another exception."""

from __future__ import annotations

import contextlib

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from portside.errors import InvalidArgument
from portside.trust.lint.dockerfile import lint_dockerfile
from portside.trust.structure.spec import load

_keys = st.sampled_from(["schemaVersion", "commandTests", "fileExistenceTests", "metadataTest",
                         "fileContentTests", "name", "path", "cmd", "args", "bogus"])
_docs = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=6),
                     lambda kids: st.lists(kids, max_size=3)
                     | st.dictionaries(_keys, kids, max_size=4), max_leaves=10)


@settings(max_examples=150, deadline=None)
@given(st.one_of(_docs.map(lambda d: yaml.safe_dump(d)), st.text(max_size=80)))
def test_structure_files_load_or_fail_in_one_line(text: str) -> None:
    with contextlib.suppress(InvalidArgument):
        load(text, "t.yaml")


_lines = st.lists(st.one_of(
    st.sampled_from(["FROM", "RUN", "ADD", "COPY", "FROM busybox AS b", "ADD [", "# x"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)), max_size=6)


@settings(max_examples=150, deadline=None)
@given(_lines)
def test_dockerfile_lint_never_crashes(lines: list[str]) -> None:
    with contextlib.suppress(InvalidArgument):
        for finding in lint_dockerfile("\n".join(lines)):
            assert finding.where.startswith("Dockerfile:")
