"""`python -m benchmarks [-k WORD] [--list]`: run the benchmarks, print a markdown table."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

import benchmarks
from benchmarks import REGISTRY, Benchmark, Context, NotAvailable, Result


def discover() -> list[Benchmark]:
    for module in pkgutil.iter_modules(benchmarks.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"benchmarks.{module.name}")
    return sorted(REGISTRY, key=lambda b: (b.order, b.name))


def _figure(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    digits = 0 if value >= 100 else 1 if value >= 10 else 2
    return f"{value:.{digits}f} {unit}"


def row(bench: Benchmark, result: Result) -> list[str]:
    ratio = "n/a"
    if result.portside is not None and result.reference:
        value = result.portside / result.reference
        met = value >= bench.goal if bench.higher_is_better else value <= bench.goal
        ratio = f"{value:.2f} {'✓' if met else '✗'}"
    portside = _figure(result.portside, result.unit)
    reference = f"{result.reference_name}: {_figure(result.reference, result.unit)}"
    if result.note:
        if result.portside is None:
            portside = result.note
        else:
            reference = f"{result.reference_name}: {result.note}"
    return [bench.name, portside, reference, ratio, bench.target]


def table(rows: list[list[str]]) -> str:
    header = ["benchmark", "portside", "reference", "ratio", "target"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("-k", dest="select", default="", help="only benchmarks whose name has this")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args()
    selected = [b for b in discover() if args.select.lower() in b.name.lower()]
    if args.list:
        print("\n".join(b.name for b in selected))
        return 0
    rows = []
    started = time.perf_counter()
    for bench in selected:
        if not args.quiet:
            print(f"== {bench.name}", file=sys.stderr, flush=True)
        work = Path(tempfile.mkdtemp(prefix="portside-bench-", dir="/var/tmp"))
        entry_started = time.perf_counter()
        try:
            result = bench.run(Context(work, verbose=not args.quiet))
        except NotAvailable as exc:
            result = Result(None, None, "", "-", f"n/a ({exc})")
        except Exception as exc:  # one broken entry must not hide the others' figures
            traceback.print_exc(file=sys.stderr)
            result = Result(None, None, "", "-", f"error ({type(exc).__name__}: {exc})")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if not args.quiet:  # so whoever adds an entry sees what it costs the 5-minute budget
            print(f"  ({time.perf_counter() - entry_started:.0f} s)", file=sys.stderr, flush=True)
        rows.append(row(bench, result))
    print(table(rows))
    if not args.quiet:
        print(f"\n({len(rows)} benchmarks in {time.perf_counter() - started:.0f} s; "
              "ratio = portside / reference)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
