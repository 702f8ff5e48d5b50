"""Layer unpack: a snapshot prepared by portside against `tar -xzf` of the same gzip layer."""

from __future__ import annotations

import subprocess

from benchmarks import Context, Result, best_of, register
from benchmarks._data import make_tree

TOTAL = 150_000_000
FILES = 3000
RUNS = 2


@register("layer unpack (gzip, 150 MB, 3000 files)", goal=0.5, higher_is_better=True, order=30)
def unpack(ctx: Context) -> Result:
    from portside.oci.model import Descriptor
    from portside.store.images import ImageStore
    from portside.store.layers import write_layer

    ctx.log("making the layer")
    make_tree(ctx.workdir / "tree", TOTAL, FILES)
    store = ImageStore(ctx.workdir / "root")
    try:
        layer = write_layer(store.content, ctx.workdir / "tree", "gzip")
        blob = store.content.path(layer.digest)
        mb = layer.uncompressed_size / 1e6
        out = ctx.workdir / "tar-x"

        def tar_x() -> None:
            subprocess.run(["tar", "-xzf", str(blob), "-C", str(out)], check=True)

        reference = best_of(RUNS, tar_x, before=lambda: ctx.scratch("tar-x"))
        ctx.log(f"tar -xzf: {reference:.2f} s")
        snapshots = store.snapshots
        if not hasattr(snapshots, "prepare"):
            return Result(None, mb / reference, "MB/s", "`tar -xzf`", "n/a (not built)")
        descriptor = Descriptor(layer.media_type, layer.digest, layer.size)
        ours = best_of(
            RUNS,
            lambda: snapshots.prepare(descriptor, layer.diff_id),
            before=lambda: snapshots.remove(layer.diff_id),
        )
        ctx.log(f"portside: {ours:.2f} s")
        return Result(mb / ours, mb / reference, "MB/s", "`tar -xzf`")
    finally:
        store.db.close()
