"""Every command the CLI lists can be loaded and shows its help; user errors are one line."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from portside.cli.main import COMMANDS, cli


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_loads_and_has_help(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_unknown_image_is_one_line_and_non_zero(tmp_path: object, root: object) -> None:
    proc = subprocess.run([sys.executable, "-m", "portside", "image", "inspect", "nosuch"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert proc.stderr.strip() == "Error: No such image: nosuch:latest"


def test_version() -> None:
    proc = subprocess.run([sys.executable, "-m", "portside", "--version"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("portside, version ")
