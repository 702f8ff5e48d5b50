"""Layer write: `write_layer` (tar, diff_id, gzip, blob digest, fsync) against `tar -czf`."""

from __future__ import annotations

import subprocess

from benchmarks import Context, Result, best_of, register
from benchmarks._data import make_tree

TOTAL = 150_000_000
FILES = 3000
RUNS = 2


@register("layer write (gzip, 150 MB, 3000 files)", goal=0.7, higher_is_better=True, order=25)
def layer_write(ctx: Context) -> Result:
    from portside.store.content import ContentStore
    from portside.store.layers import write_layer

    ctx.log("making the tree")
    tree = ctx.workdir / "tree"
    make_tree(tree, TOTAL, FILES)
    out = ctx.workdir / "layer.tar.gz"
    reference = best_of(
        RUNS,
        lambda: subprocess.run(
            ["tar", "--sort=name", "-czf", str(out), "-C", str(tree), "."], check=True
        ),
    )
    sizes: list[int] = []

    def ours_once() -> None:
        store = ContentStore(ctx.workdir / "store")
        sizes.append(write_layer(store, tree, "gzip").uncompressed_size)

    ours = best_of(RUNS, ours_once, before=lambda: ctx.scratch("store"))
    ctx.log(f"tar -czf {reference:.2f} s, write_layer {ours:.2f} s")
    mb = sizes[-1] / 1e6
    return Result(mb / ours, mb / reference, "MB/s", "`tar -czf`")
