"""The `portside` command make setup installs: `run` starts without site imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers.daemon import PortsideDaemon

LAUNCHER = Path(sys.executable).parent / "portside"

pytestmark = pytest.mark.skipif(
    not LAUNCHER.exists() or " -S" not in LAUNCHER.read_text().splitlines()[0],
    reason="the venv's portside command is not the -S launcher (make setup installs it)")


def test_run_needs_no_site_and_other_commands_still_work(daemon: PortsideDaemon) -> None:
    r = subprocess.run([sys.executable, "-S", "-X", "importtime", str(LAUNCHER), "run", "--rm",
                        "--network", "none", "busybox", "echo", "hello"],
                       env={**daemon.env, "PYTHONPATH": ""}, capture_output=True, text=True,
                       timeout=60, check=True)
    assert r.stdout == "hello\n"
    imported = {line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines()
                if line.startswith("import time:")}
    assert "portside.cli.runcore" in imported  # (fastrun itself exits before its import ends)
    assert not imported & {"site", "click", "typing", "json", "dataclasses"}
    images = subprocess.run([str(LAUNCHER), "images", "--format", "json"], env=daemon.env,
                            capture_output=True, text=True, timeout=60, check=True)
    assert '"Repository": "busybox"' in images.stdout
