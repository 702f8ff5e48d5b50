"""`portside scan` of the Debian bootstrap image against 100,000 generated OSV advisories,
warm (the image already indexed), beside the issue's budget of 1 s: no reference scanner
(trivy, grype, osv-scanner) is packaged by Debian bookworm or PyPI for container images,
so the budget stands in for one. The import's rate is logged."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from benchmarks import Context, NotAvailable, Result, median_of, register

ADVISORIES = 100_000
# source packages of Debian's minbase (bookworm), so part of the database hits the image
SOURCES = ("glibc", "zlib", "apt", "bash", "coreutils", "util-linux", "systemd", "gnutls28",
           "shadow", "pam", "perl", "tar", "xz-utils", "gcc-12", "ncurses", "e2fsprogs")


def _record(n: int, rng: random.Random) -> dict[str, object]:
    kind = rng.random()
    if kind < 0.2:
        # as in Debian's real feed: most were fixed long ago, a few are open
        package = {"ecosystem": "Debian:12", "name": rng.choice(SOURCES)}
        events: list[dict[str, str]] = [{"introduced": "0"}]
        if rng.random() > 0.01:
            events.append({"fixed": f"0.{rng.randint(1, 99)}-{rng.randint(1, 9)}"})
        ranges = [{"type": "ECOSYSTEM", "events": events}]
    elif kind < 0.6:
        package = {"ecosystem": "PyPI", "name": f"pkg{rng.randint(0, 20000)}"}
        ranges = [{"type": "ECOSYSTEM", "events": [{"introduced": "0"},
                                                    {"fixed": f"{rng.randint(0, 9)}.{n % 50}"}]}]
    else:
        package = {"ecosystem": "npm", "name": f"mod{rng.randint(0, 20000)}"}
        ranges = [{"type": "SEMVER", "events": [{"introduced": "0"},
                                                 {"fixed": f"{rng.randint(0, 9)}.{n % 50}.0"}]}]
    return {"schema_version": "1.6.0", "id": f"BENCH-{n}", "modified": "2026-01-01T00:00:00Z",
            "summary": f"generated advisory {n}", "affected": [{"package": package,
                                                                "ranges": ranges}],
            "severity": [{"type": "CVSS_V3",
                          "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]}


@register("`scan` of Debian against 100,000 OSV advisories (warm)", goal=1, higher_is_better=False,
          order=80)
def scan(ctx: Context) -> Result:
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        raise NotAvailable("the Debian bootstrap image needs root and debootstrap")
    portside = str(Path(sys.executable).with_name("portside"))
    env = {**os.environ, "PORTSIDE_ROOT": str(ctx.workdir / "root")}

    def run(*args: str) -> str:
        r = subprocess.run([portside, *args], env=env, capture_output=True, text=True)
        if r.returncode != 0:
            raise NotAvailable(f"portside {args[0]} failed: {r.stderr.strip()[-200:]}")
        return r.stdout

    run("image", "bootstrap", "debian", "--suite", "bookworm", "-q")
    archive = ctx.workdir / "all.zip"
    rng = random.Random(14)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for n in range(ADVISORIES):
            z.writestr(f"BENCH-{n}.json", json.dumps(_record(n, rng)))
    started = time.perf_counter()
    run("scan", "db", "import", str(archive))
    took = time.perf_counter() - started
    ctx.log(f"imported {ADVISORIES:,} advisories in {took:.1f} s "
            f"({ADVISORIES / took:,.0f} records/s)")
    run("scan", "debian:bookworm", "--format", "json")  # indexes the image: the cold run
    found = len(json.loads(run("scan", "debian:bookworm", "--format", "json"))["vulnerabilities"])
    warm = median_of(5, lambda: run("scan", "debian:bookworm", "--format", "json"))
    ctx.log(f"warm scan {warm * 1000:.0f} ms, {found} findings")
    return Result(warm * 1000, 1000.0, "ms", "the issue's budget (no packaged scanner)")
