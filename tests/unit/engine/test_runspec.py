"""The click-free parser of `portside run` reads arguments exactly as the click command
does, and hands anything else back to click."""

from __future__ import annotations

import pytest

from portside.cli.containers import run as run_command
from portside.cli.runspec import FLAGS, build_body, parse_run

SAMPLES = [
    ["busybox"],
    ["--rm", "busybox", "true"],
    ["-it", "--rm", "--name", "x", "busybox", "sh", "-c", "echo -e hi"],
    ["-d", "-p80:80", "-p", "127.0.0.1::443/tcp", "-e", "A=1", "--env=B=2", "busybox"],
    ["--network", "none", "-m", "64m", "--cpus", "0.5", "--pids-limit", "10", "busybox",
     "ls", "-l", "--", "x"],
    ["-v", "/a:/b:ro", "--tmpfs", "/t", "--restart=on-failure:3", "--init", "-u", "1:2",
     "--health-cmd", "true", "--health-retries", "3", "--log-opt", "max-size=1k", "img"],
    ["--", "busybox", "-x"],
    ["-P", "--expose", "80", "--dns", "1.1.1.1", "--add-host", "a:1.2.3.4", "--runtime",
     "runc", "-w", "/tmp", "busybox", "--rm"],
]


@pytest.mark.parametrize("argv", SAMPLES)
def test_same_values_as_click(argv: list[str]) -> None:
    ctx = run_command.make_context("run", list(argv))
    expected = dict(ctx.params)
    parsed = parse_run(argv)
    assert parsed is not None
    kw, image, command = parsed
    assert {**kw, "image": image, "command": tuple(command)} == expected


@pytest.mark.parametrize("argv", [[], ["--help"], ["--bogus", "x"], ["--pids-limit", "many",
                                  "x"], ["--runtime", "kata", "x"], ["--rm"], ["-d=1", "x"],
                                  ["--name"]])
def test_leaves_the_rest_to_click(argv: list[str]) -> None:
    assert parse_run(argv) is None


def test_every_flag_has_a_default_body() -> None:
    kw = {f.dest: f.default for f in FLAGS}
    body = build_body("busybox", ("true",), kw)
    assert body["HostConfig"]["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert body["HostConfig"]["LogConfig"] == {"Type": "k8s-file", "Config": {}}
    assert body["Labels"] is None and body["Env"] is None
