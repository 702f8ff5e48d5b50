"""compose build / up --build: images built from Dockerfiles, rebuilt images recreate."""

from __future__ import annotations

from .conftest import Project

APP = """
services:
  app:
    build:
      context: ./app
      args: {MESSAGE: "${MESSAGE:-built}"}
    network_mode: none
    command: sh -c "cat /message; exec sleep 1000"
    stop_grace_period: 0s
  plain:
    image: busybox
    network_mode: none
    command: sleep 1000
    stop_grace_period: 0s
"""

DOCKERFILE = """FROM busybox
ARG MESSAGE
COPY note.txt /note.txt
RUN echo "$MESSAGE" > /message
"""


def test_up_build_and_rebuild(project: Project) -> None:
    project.write(APP)
    ctx = project.folder / "app"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "note.txt").write_text("one\n")
    p = project.name
    project.compose("up", "-d", "--build")  # missing images are built anyway
    images = project.daemon.cli("images", "--format", "json").stdout
    assert f"{p}-app" in images
    assert project.compose("logs", "--no-log-prefix", "app").stdout == "built\n"
    before = project.ids()

    # an unchanged build keeps the containers
    project.compose("up", "-d", "--build")
    assert project.ids() == before

    # a changed context gives a new image: only that service is recreated
    (ctx / "note.txt").write_text("two\n")
    project.compose("up", "-d", "--build")
    after = project.ids()
    assert after[f"{p}-app-1"] != before[f"{p}-app-1"]
    assert after[f"{p}-plain-1"] == before[f"{p}-plain-1"]
    out = project.compose("exec", "-T", "app", "cat", "/note.txt").stdout
    assert out == "two\n"

    # compose build on its own, with a build arg from the environment
    project.daemon.env["MESSAGE"] = "rebuilt"
    project.compose("build", "app")
    project.compose("up", "-d")
    assert project.compose("exec", "-T", "app", "cat", "/message").stdout == "rebuilt\n"


def test_missing_image_is_an_error(project: Project) -> None:
    project.write("services:\n  app:\n    image: nosuchimage:1\n    network_mode: none\n"
                  "    pull_policy: never\n")
    r = project.compose("up", "-d", check=False)
    assert r.returncode != 0
    assert 'image "nosuchimage:1" not found' in r.stderr
    assert project.ps("-a") == []
