"""An image portside builds runs in podman: the archive loads, the layers and config hold."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from helpers.podman import Run

from portside.store.images import ImageStore

from .test_build_cli import portside

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        os.geteuid() != 0 or not all(shutil.which(t) for t in ("crun", "conmon", "runc")),
        reason="needs root, crun, conmon and runc",
    ),
]


def test_portside_build_runs_in_podman(
    root: Path,
    store: ImageStore,
    podman: Run,
    tmp_path: Path,
) -> None:
    from portside.store.bootstrap import BootstrapError, bootstrap_busybox

    try:
        bootstrap_busybox(store, ("busybox:latest",))
    except BootstrapError as exc:
        pytest.skip(str(exc))
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "greeting.txt").write_text("hello from the context\n")
    (ctx / "Dockerfile").write_text(
        "FROM busybox\nWORKDIR /app\nCOPY greeting.txt .\n"
        "RUN echo built-by-run > made.txt && rm /bin/vi\n"
        'ENV WHO=podman\nCMD ["sh", "-c", "cat greeting.txt made.txt; echo $WHO; '
        'test -e /bin/vi || echo no-vi"]\n'
    )
    archive = tmp_path / "app.tar"
    portside(root, "build", "-q", "-t", "app:1", "-o", f"type=docker,dest={archive}", str(ctx))
    podman("load", "-i", str(archive))
    out = podman("run", "--rm", "--runtime", "runc", "--network", "none", "app:1").stdout
    assert out.splitlines() == ["hello from the context", "built-by-run", "podman", "no-vi"]
    history = podman("image", "history", "--no-trunc", "--format", "{{.CreatedBy}}", "app:1")
    assert "COPY greeting.txt . # buildkit" in history.stdout
