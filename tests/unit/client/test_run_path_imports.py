"""The hot path of `portside run` stays import-light: no dataclasses, typing, json, click
or the engine interface (each costs milliseconds of every `run`)."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = {"dataclasses", "typing", "json", "click", "portside.engine.interface"}

# What `fastrun` does for the bench's `run --rm busybox true` short of talking to a daemon:
# parse the flags, build the create body, ready the calls and the stream session.
RUN_PATH = """
import sys
from portside.cli.runspec import parse_run, build_body
from portside.cli.runcore import run_container
from portside.cli.streaming import Session
from portside.client.runpath import RunPath
kw, image, command = parse_run(["--rm", "busybox", "true"])
build_body(image, tuple(command), kw)
RunPath()
print("\\n".join(sorted(sys.modules)))
"""


def _modules(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    return set(out.split())


def test_run_path_imports_none_of_the_heavy_modules() -> None:
    baseline = _modules("import sys; print('\\n'.join(sorted(sys.modules)))")
    loaded = _modules(RUN_PATH) - baseline
    assert "portside.client.runpath" in loaded  # the probe did import the run path
    assert loaded & FORBIDDEN == set()
