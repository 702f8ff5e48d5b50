"""`load` of a ~500 MB docker-save archive: portside against `podman load` (vfs storage).

The image is made here with the layer writer from incompressible data (5 layers of
100 MB) and saved by portside; podman gets a private root, run root and temporary
directory under the benchmark's scratch directory, all deleted afterwards.
"""

from __future__ import annotations

import os
import subprocess

from benchmarks import Context, NotAvailable, Result, best_of, register, run_quiet
from benchmarks._data import make_tree

LAYERS = 5
LAYER_BYTES = 100_000_000
RUNS = 2
NAME = "bench/load:latest"


@register("load (docker archive, 500 MB)", goal=1.0, higher_is_better=True, order=40)
def load(ctx: Context) -> Result:
    from portside.store.images import ImageStore

    try:
        from portside.store import archive
    except ImportError:
        raise NotAvailable("not built") from None
    archive_path = ctx.workdir / "image.tar"
    size = _make_archive(ctx, archive_path, archive)
    mb = size / 1e6

    def ours() -> None:
        store = ImageStore(ctx.workdir / "ours")
        try:
            archive.load(store, archive_path)
        finally:
            store.db.close()

    portside = best_of(RUNS, ours, before=lambda: _wipe(ctx.workdir / "ours"))
    ctx.log(f"portside load: {portside:.2f} s")
    try:
        ctx.ensure_debs("podman")
    except NotAvailable as exc:
        return Result(mb / portside, None, "MB/s", "`podman load`", f"n/a ({exc})")
    podman_dir = ctx.workdir / "podman"
    command = [
        "podman", "--root", str(podman_dir / "root"), "--runroot", str(podman_dir / "run"),
        "--tmpdir", str(podman_dir / "libpod"), "--storage-driver", "vfs",
        "--cgroup-manager", "cgroupfs", "--events-backend", "file",
        "load", "-q", "-i", str(archive_path),
    ]
    env = dict(os.environ, TMPDIR=str(podman_dir / "tmp"))

    def reset() -> None:
        ctx.scratch("podman")
        (podman_dir / "tmp").mkdir()

    reference = best_of(RUNS, lambda: run_quiet(command, env=env), before=reset)
    ctx.log(f"podman load: {reference:.2f} s")
    return Result(mb / portside, mb / reference, "MB/s", "`podman load`")


def _wipe(path: os.PathLike[str]) -> None:
    subprocess.run(["rm", "-rf", os.fspath(path)], check=True)


def _make_archive(ctx: Context, path: os.PathLike[str], archive: object) -> int:
    from portside.store.imagebuilder import new_image
    from portside.store.images import ImageStore
    from portside.store.layers import write_layer

    ctx.log("making a 500 MB image")
    store = ImageStore(ctx.workdir / "source")
    try:
        layers = []
        for i in range(LAYERS):
            tree = ctx.scratch(f"tree{i}")
            make_tree(tree, LAYER_BYTES, 20, seed=i, compressible=False)
            layers.append(write_layer(store.content, tree, ""))
            _wipe(tree)
        history = [{"created_by": f"benchmark layer {i}"} for i in range(LAYERS)]
        new_image(store, layers, {"Cmd": ["sh"]}, history, tags=[NAME])
        archive.save(store, [NAME], path, "docker")  # type: ignore[attr-defined]
    finally:
        store.db.close()
    _wipe(ctx.workdir / "source")
    return os.path.getsize(path)
