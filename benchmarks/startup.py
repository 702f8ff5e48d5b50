"""CLI start-up: `portside --version` against a bare `python -c pass` of the same interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks import Context, Result, median_of, register

RUNS = 15


@register("CLI start-up (`portside --version`)", goal=6, higher_is_better=False, order=10)
def startup(ctx: Context) -> Result:
    portside = str(Path(sys.executable).with_name("portside"))

    def run(*command: str) -> None:
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)

    run(portside, "--version")  # warm the page cache and the bytecode cache
    ours = median_of(RUNS, lambda: run(portside, "--version"))
    bare = median_of(RUNS, lambda: run(sys.executable, "-c", "pass"))
    ctx.log(f"portside --version {ours * 1000:.0f} ms, python -c pass {bare * 1000:.0f} ms")
    return Result(ours * 1000, bare * 1000, "ms", "`python3 -c pass`")
