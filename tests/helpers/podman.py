"""Real podman for interop tests, in a private store that never touches the machine's.

Its own root, a short runroot (podman wants socket paths under 108 bytes), vfs storage, runc
(crun refuses this host's hybrid cgroups), ulimits within the host's hard limits, and no
search registries; `system reset` removes everything at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

Run = Callable[..., subprocess.CompletedProcess[str]]


def need(tool: str) -> str:
    """The path of `tool`, or skip the test saying `make setup` installs it."""
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (make setup installs it)")
    return path


@contextmanager
def private_podman(base: Path) -> Iterator[Run]:
    binary = need("podman")
    base.mkdir(parents=True, exist_ok=True)
    conf = base / "containers.conf"
    conf.write_text('[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
                    '[engine]\nruntime = "runc"\nevents_logger = "none"\n')
    registries = base / "registries.conf"
    registries.write_text("unqualified-search-registries = []\n")
    env = {**os.environ, "CONTAINERS_CONF": str(conf), "CONTAINERS_REGISTRIES_CONF": str(registries)}
    runroot = Path(tempfile.mkdtemp(prefix="pm-", dir="/tmp"))
    flags = ["--root", str(base / "storage"), "--runroot", str(runroot), "--storage-driver", "vfs"]

    def call(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([binary, *flags, *args], env=env, capture_output=True, text=True,
                                timeout=300, input=input)
        assert result.returncode == 0, f"podman {' '.join(args)}: {result.stderr}"
        return result

    try:
        yield call
    finally:
        # vfs leaves plain directories, some read-only: let podman remove its own state.
        subprocess.run([binary, *flags, "system", "reset", "--force"], env=env,
                       capture_output=True, timeout=300)
        shutil.rmtree(runroot, ignore_errors=True)
