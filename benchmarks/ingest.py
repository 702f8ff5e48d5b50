"""Blob ingest: `ContentStore.ingest` of a file against `sha256sum` of the same file.

Ingest does more than hash (it writes the blob, fsyncs and renames it), so the target
leaves room for the write; both read the file from a warm page cache.
"""

from __future__ import annotations

import os
import subprocess

from benchmarks import Context, Result, best_of, register

SIZE = 256 << 20
RUNS = 3


@register("blob ingest (256 MiB)", goal=0.5, higher_is_better=True, order=20)
def ingest(ctx: Context) -> Result:
    from portside.store.content import ContentStore

    source = ctx.workdir / "blob.bin"
    with open(source, "wb") as f:
        for _ in range(SIZE >> 24):
            f.write(os.urandom(1 << 24))
    store_dir = ctx.workdir / "store"
    reference = best_of(
        RUNS, lambda: subprocess.run(["sha256sum", str(source)], check=True, capture_output=True)
    )

    def run() -> None:
        with open(source, "rb") as f:
            ContentStore(store_dir).ingest(f)

    def reset() -> None:
        subprocess.run(["rm", "-rf", str(store_dir)], check=True)

    ours = best_of(RUNS, run, before=reset)
    mb = SIZE / 1e6
    return Result(mb / ours, mb / reference, "MB/s", "`sha256sum`")
