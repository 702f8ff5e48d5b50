"""The corpus of broken Dockerfiles: each gives exactly the message a user should see."""

from __future__ import annotations

from pathlib import Path

import pytest

from portside.build.errors import DockerfileError
from portside.build.instructions import parse

CORPUS = Path(__file__).parents[2] / "data" / "dockerfiles"
CASES = sorted(CORPUS.glob("*.Dockerfile"))


def test_corpus_is_not_empty() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_broken_dockerfile_message(case: Path) -> None:
    expected = case.with_suffix(".error").read_text().rstrip("\n")
    with pytest.raises(DockerfileError) as info:
        parse(case.read_text(), "Dockerfile")
    assert str(info.value) == expected
