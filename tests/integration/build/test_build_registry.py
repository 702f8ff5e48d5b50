"""`portside build` with a registry: --push, pulling a missing base, --cache-from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.regserver import RunningRegistry, run_registry

from portside.registry import server as srv

from .test_build_cli import layer_files, portside, statuses


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RunningRegistry]:
    running, stop = run_registry(srv.open_registry(tmp_path / "registry"))
    yield running
    stop()


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    c = tmp_path / "ctx"
    c.mkdir()
    (c / "app.txt").write_text("app\n")
    (c / "lib.txt").write_text("lib\n")
    return c


def test_push_pull_and_cache_from(tmp_path: Path, ctx: Path, registry: RunningRegistry) -> None:
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    name = f"{registry.host}/team/app:1"
    (ctx / "Dockerfile").write_text(
        "FROM scratch\nCOPY lib.txt /lib/\nENV A=1\nCOPY app.txt /app/\n"
    )
    built = portside(here, "build", "--progress", "plain", "-t", name, "--push", str(ctx))
    assert f"pushed {name}: digest: sha256:" in built.stderr

    # Another machine reuses every pushed step instead of building it again.
    again = portside(
        there, "build", "--progress", "plain", "--cache-from", name, "-t", "copy", str(ctx)
    )
    assert "cache from" in again.stderr, again.stderr
    steps = {k: v for k, v in statuses(again.stderr).items() if not k.startswith("FROM")}
    assert set(steps.values()) == {"CACHED"}, again.stderr
    assert again.stdout == built.stdout, (built.stderr, again.stderr)  # the very same image

    # A base that is not in the store is pulled.
    (ctx / "Dockerfile").write_text(f"FROM {name}\nCOPY app.txt /more/\n")
    third = tmp_path / "third"
    third.mkdir()
    child = portside(third, "build", "--progress", "plain", "-t", "child", str(ctx))
    assert f"pulled {name}" in child.stderr, child.stderr
    layers = layer_files(third, "child")
    assert layers[0]["lib/lib.txt#data"] == b"lib\n" and layers[2]["more/app.txt#data"] == b"app\n"


def test_missing_base_that_cannot_be_pulled(
    root: Path, ctx: Path, registry: RunningRegistry
) -> None:
    (ctx / "Dockerfile").write_text(f"FROM {registry.host}/nope:1\n")
    proc = portside(root, "build", str(ctx), ok=False)
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: Dockerfile:1: FROM: no image named '{registry.host}/nope:1'")
    assert "pulling" in last
    push = portside(root, "build", "--push", str(ctx), ok=False)
    assert "--push needs at least one -t name" in push.stderr
