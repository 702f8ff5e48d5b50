"""The import layering of DESIGN.md holds: `lint-imports` over pyproject.toml's contracts.

The other tests break a copy of the source tree on purpose and check that the contracts
notice: an upward import, an import of the CLI, a cycle hidden in a function-local import,
and a package of an optional layer (`portside.state`) that imports upward once it exists.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(src: Path) -> subprocess.CompletedProcess[str]:
    """Check the contracts against the `portside` package under `src` (no cache: a copy's
    files have fresh times, and the real tree's answer must never come from a stale one)."""
    if not LINT_IMPORTS.exists():
        pytest.fail(f"{LINT_IMPORTS} is missing: `make setup` installs import-linter (dev extras)")
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run([str(LINT_IMPORTS), "--no-logo", "--no-cache", str(CONFIG)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_the_contracts_are_kept() -> None:
    done = lint_imports(ROOT / "src")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


# (file under src/portside, text appended to it, what lint-imports must report)
BREAKS = {
    "upward": ("store/content.py", "\nfrom portside.engine import files  # noqa: E402\n",
               "portside.store is not allowed to import portside.engine"),
    "cli": ("compose/naming.py",
            "\n\ndef _render() -> None:\n    from portside.cli import output  # noqa: F401\n",
            "Illegal imports of protected package portside.cli"),
    "sibling": ("network/dns.py", "\nfrom portside.runtime import conmon  # noqa: E402\n",
                "portside.network is not allowed to import portside.runtime"),
    "hidden-cycle": ("store/archive_common.py",
                     "\n\ndef _load() -> None:\n    from portside.store import archive_load  # noqa\n",
                     "No cycles are allowed in portside.store"),
    "optional-layer": ("state/__init__.py", "from portside.engine import events  # noqa\n",
                       "portside.state is not allowed to import portside.engine"),
}


@pytest.mark.parametrize("case", sorted(BREAKS))
def test_a_broken_layer_is_reported(case: str, tmp_path: Path) -> None:
    path, text, report = BREAKS[case]
    shutil.copytree(ROOT / "src" / "portside", tmp_path / "portside",
                    ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "portside" / path
    target.parent.mkdir(exist_ok=True)
    with target.open("a") as f:
        f.write(text)
    done = lint_imports(tmp_path)
    assert done.returncode != 0, done.stdout
    assert report in done.stdout, done.stdout + done.stderr
