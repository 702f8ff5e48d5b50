"""The broken-file corpus: each case in tests/data/compose/<case>/ fails to load with
exactly the message in its `expected` file (relative names: the case is the cwd)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portside.compose.errors import ComposeError
from portside.compose.project import Options, load_project

CORPUS = Path(__file__).parents[2] / "data" / "compose"
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "expected").is_file())


def test_corpus_is_there() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES)
def test_broken_file_message(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = CORPUS / case
    monkeypatch.chdir(folder)
    opts = json.loads((folder / "options.json").read_text()) \
        if (folder / "options.json").is_file() else {}
    expected = (folder / "expected").read_text().strip().replace("{dir}", str(folder))
    warnings: list[str] = []
    with pytest.raises(ComposeError) as err:
        load_project(Options(files=opts.get("files", ()), environ=opts.get("environ", {}),
                             project_name=opts.get("project_name"), warn=warnings.append))
    assert str(err.value) == expected
    assert "\n" not in str(err.value)
