"""`portside trace`: a container of an image built from a git checkout traces to the
commit, and each layer to the Dockerfile line that made it; an unknown container is a
one-line error."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from helpers.daemon import PortsideDaemon


def git(ctx: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(ctx), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def test_trace_reaches_the_commit_and_the_dockerfile_lines(tmp_path: Path,
                                                           daemon: PortsideDaemon) -> None:
    ctx = tmp_path / "app"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nENV MODE=prod\nCOPY hello.txt /hello.txt\n"
                                    "RUN echo built > /built\n")
    (ctx / "hello.txt").write_text("hi\n")
    git(ctx, "init", "-q")
    git(ctx, "remote", "add", "origin", "https://git.example/shop/app.git")
    git(ctx, "add", ".")
    git(ctx, "-c", "user.name=t", "-c", "user.email=t@example", "commit", "-qm", "first")
    commit = git(ctx, "rev-parse", "HEAD")
    daemon.cli("build", "-q", "-t", "tr-trace:1", str(ctx))
    daemon.cli("run", "-d", "--name", "tr-traced", "tr-trace:1", "sleep", "60")

    doc = json.loads(daemon.cli("trace", "--format", "json", "tr-traced").stdout)
    assert doc["container"] == "tr-traced" and doc["image"] == "tr-trace:1"
    assert doc["revision"] == commit and doc["dirty"] == "false"
    assert doc["source"] == "https://git.example/shop/app.git"
    assert doc["manifest_digest"].startswith("sha256:")
    steps = [(layer["step"], layer["created_by"]) for layer in doc["layers"]]
    assert steps[-2:] == [("Dockerfile:3", "COPY hello.txt /hello.txt # buildkit"),
                          ("Dockerfile:4", "RUN echo built > /built # buildkit")]
    assert all(layer["digest"].startswith("sha256:") for layer in doc["layers"])

    text = daemon.cli("trace", "tr-traced").stdout
    assert f"commit     {commit} from https://git.example/shop/app.git" in text
    assert "Dockerfile:4  RUN echo built > /built # buildkit" in text

    missing = daemon.cli("trace", "tr-nothing", check=False)
    assert missing.returncode != 0
    assert missing.stderr.strip().count("\n") == 0 and "tr-nothing" in missing.stderr
