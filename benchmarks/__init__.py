"""Benchmarks: each figure of portside beside the reference tool's, measured in the same run.

Every module of this package (not starting with `_`) is one entry or a few: it registers
a function with `@register(...)`; `python -m benchmarks` imports them all, runs each in its
own temporary directory, and prints a markdown table. A result gives both figures in one
unit; the ratio is portside / reference, and the target says which way is good
(`>= 0.5` for a throughput, `<= 2` for a time). A part not built yet, or a reference tool
that cannot be installed, shows as `n/a (why)` instead of failing the run.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class NotAvailable(Exception):
    """Raise from a benchmark when one side cannot be measured; the message says why."""


@dataclass
class Result:
    portside: float | None
    reference: float | None
    unit: str  # "MB/s", "ms", "s"
    reference_name: str
    note: str = ""  # e.g. "n/a (not built)" for a side that could not run


def versus(ours: float | None, theirs: float | None, unit: str, reference_name: str,
           ours_why: str = "not measured", theirs_why: str = "not measured") -> Result:
    """A Result from two figures measured apart, either of which may be missing (each
    missing one with why: the note names both when neither could be measured)."""
    if ours is None and theirs is None:
        return Result(None, None, unit, reference_name,
                      f"n/a (portside: {ours_why}; reference: {theirs_why})")
    if ours is None:
        return Result(None, theirs, unit, reference_name, f"n/a ({ours_why})")
    if theirs is None:
        return Result(ours, None, unit, reference_name, f"n/a ({theirs_why})")
    return Result(ours, theirs, unit, reference_name)


@dataclass
class Benchmark:
    name: str
    run: Callable[[Context], Result]
    goal: float  # the ratio portside / reference we aim for
    higher_is_better: bool
    order: int = 50

    @property
    def target(self) -> str:
        return f"{'≥' if self.higher_is_better else '≤'} {self.goal:g}"


REGISTRY: list[Benchmark] = []


def register(
    name: str, goal: float, higher_is_better: bool, order: int = 50
) -> Callable[[Callable[[Context], Result]], Callable[[Context], Result]]:
    """Add a benchmark function to the table (run in `order`, then by name)."""

    def wrap(fn: Callable[[Context], Result]) -> Callable[[Context], Result]:
        REGISTRY.append(Benchmark(name, fn, goal, higher_is_better, order))
        return fn

    return wrap


@dataclass
class Context:
    """What a benchmark gets: a private scratch directory and a few helpers."""

    workdir: Path
    verbose: bool = True
    _installed: dict[str, bool] = field(default_factory=dict)

    def log(self, message: str) -> None:
        if self.verbose:
            print(f"  {message}", file=sys.stderr, flush=True)

    def ensure_debs(self, *packages: str) -> None:
        """Install missing Debian packages (as `make setup` does) or raise NotAvailable."""
        missing = [p for p in packages if not _deb_installed(p)]
        if not missing:
            return
        if os.geteuid() != 0:
            raise NotAvailable(f"{', '.join(missing)} not installed")
        self.log(f"installing {' '.join(missing)}")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        ok = subprocess.run(["apt-get", "install", "-y", "-q", *missing], env=env,
                            capture_output=True).returncode == 0
        if not ok:
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env)
            ok = subprocess.run(["apt-get", "install", "-y", "-q", *missing], env=env,
                                capture_output=True).returncode == 0
        if not ok:
            raise NotAvailable(f"cannot install {', '.join(missing)}")

    def scratch(self, name: str) -> Path:
        """A fresh directory under the workdir (replaced if it exists)."""
        path = self.workdir / name
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path


def _deb_installed(package: str) -> bool:
    out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                         capture_output=True, text=True)
    return "install ok installed" in out.stdout


def timed(fn: Callable[[], Any]) -> float:
    """Wall-clock seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def best_of(runs: int, fn: Callable[[], Any], before: Callable[[], Any] | None = None) -> float:
    """The fastest of `runs` calls (each after `before`, untimed): noise only ever adds time."""
    times = []
    for _ in range(runs):
        if before:
            before()
        times.append(timed(fn))
    return min(times)


def median_of(runs: int, fn: Callable[[], Any]) -> float:
    return statistics.median(timed(fn) for _ in range(runs))


def run_quiet(command: list[str], **kwargs: Any) -> None:
    """Run a reference tool; its output only matters when it fails."""
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
        raise NotAvailable(f"{command[0]} failed: {tail[0] if tail else result.returncode}")
