"""`docker pull` and `docker push` of a 512 MB image: portside's daemon against dockerd.

The same `docker` client (the one first on PATH) talks to portside's daemon
(`DOCKER_HOST=unix://<its socket>`) and to a private dockerd 20.10 (benchmarks/_docker.py,
started with `insecure-registries` naming the registry), one after the other, and both
pull from and push to one `portside registry serve` on 127.0.0.1 (plain http: dockerd
through its config, portside's daemon because the host is local, registry/client.py).

The image is made here with portside's layer writer, without Docker Hub: four gzip
layers of 128 MiB of random bytes (gzip cannot shrink them, so what travels is what was
written; gzip is what registries serve), seeded into the registry by portside's own
push. Each timed pull starts with the image absent from the daemon (`docker rmi` before
it, then checked: `docker image inspect` fails, and no layer blob is left in portside's
root); each timed push goes into a registry restarted on the same port over an empty
root, so every layer is really sent (checked: the registry's root then holds the
image's bytes). Best of RUNS for each; the figures are seconds, measured together the
first time either entry runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks import Context, NotAvailable, Result, register, versus
from benchmarks._data import make_tree
from benchmarks._docker import Docker, DockerClient
from benchmarks._portside import running
from benchmarks.registry_servers import free_port, portside_server

LAYERS = 4
LAYER_BYTES = 128 << 20
RUNS = 2
SOURCE = "bench/pull:1"  # the seeded image, as the registry holds it
PUSHED = "bench/pushed:1"  # where the daemons push it back
# The probes of the routes these entries need (Portside.probe). The pull names a registry
# nothing listens on, so a daemon that pulls answers 500 at once; a 404 is a stub's ("does
# not pull") or the router's. The push names an image the daemon lacks, so only the
# router's own 404 means the route is missing.
PULL_PROBE = "/images/create?fromImage=127.0.0.1%3A1%2Fbench%2Fprobe&tag=none"
PUSH_PROBE = "/images/portside-bench-probe/push?tag=none"
_CACHE: dict[str, Any] = {}


def _make_image(ctx: Context, store_dir: Path) -> tuple[list[str], int]:
    """A store holding SOURCE; returns its layers' blob digests and the image's bytes."""
    from portside.store.imagebuilder import new_image
    from portside.store.images import ImageStore
    from portside.store.layers import write_layer

    ctx.log(f"making a {LAYERS * LAYER_BYTES >> 20} MiB image ({LAYERS} gzip layers)")
    store = ImageStore(store_dir)
    try:
        with store.importing():
            layers = []
            for i in range(LAYERS):
                tree = ctx.scratch(f"tree{i}")
                make_tree(tree, LAYER_BYTES, 16, seed=110 + i, compressible=False)
                layers.append(write_layer(store.content, tree, "gzip"))
                shutil.rmtree(tree)
            history = [{"created_by": f"benchmark layer {i}"} for i in range(LAYERS)]
            new_image(store, layers, {"Cmd": ["sh"]}, history, tags=[SOURCE])
    finally:
        store.db.close()
    return [layer.digest for layer in layers], sum(layer.size for layer in layers)


def _seed(store_dir: Path, host: str) -> None:
    """Push SOURCE into the registry at `host` with portside's client."""
    from portside.registry import transfer
    from portside.store.images import ImageStore

    store = ImageStore(store_dir)
    try:
        store.tag(SOURCE, f"{host}/{SOURCE}")
        asyncio.run(transfer.push(store, f"{host}/{SOURCE}"))
    finally:
        store.db.close()


def _tree_bytes(top: Path) -> int:
    return sum(p.stat().st_size for p in top.rglob("*") if p.is_file())


class _Registry:
    """`portside registry serve` on one fixed port (the one dockerd was told is insecure),
    restarted over an empty root when a push must find nothing there."""

    def __init__(self, work: Path, store_dir: Path) -> None:
        self.work, self.store_dir = work, store_dir
        self.host = f"127.0.0.1:{free_port()}"
        self.runs = 0

    @contextlib.contextmanager
    def fresh(self, seeded: bool) -> Iterator[Path]:
        """A registry over a new, empty root (holding SOURCE when `seeded`); yields the root."""
        self.runs += 1
        root = self.work / f"registry{self.runs}"
        try:
            with portside_server(root, self.host):
                if seeded:
                    _seed(self.store_dir, self.host)
                yield root
        finally:
            subprocess.run(["rm", "-rf", str(root)], check=False)


def _side(ctx: Context, name: str, docker: DockerClient, registry: _Registry, size: int,
          leftovers: Callable[[], list[Path]] = list) -> tuple[float, float]:
    """Best-of-RUNS seconds of `docker pull` and of `docker push` through one daemon."""
    source, pushed = f"{registry.host}/{SOURCE}", f"{registry.host}/{PUSHED}"
    pulls = []
    with registry.fresh(seeded=True):
        for _ in range(RUNS):
            docker.ok("rmi", "-f", source)
            if docker.ok("image", "inspect", source):
                raise NotAvailable(f"{name}: `docker rmi` left {source} in place")
            left = leftovers()
            if left:
                raise NotAvailable(f"{name}: a layer is still in the store after rmi: {left[0]}")
            pulls.append(docker.timed("pull", source))
            ctx.log(f"{name}: docker pull {pulls[-1]:.2f} s ({size / 1e6 / pulls[-1]:.0f} MB/s)")
    docker("tag", source, pushed)
    pushes = []
    for _ in range(RUNS):
        with registry.fresh(seeded=False) as root:
            pushes.append(docker.timed("push", pushed))
            stored = _tree_bytes(root)
        ctx.log(f"{name}: docker push {pushes[-1]:.2f} s ({size / 1e6 / pushes[-1]:.0f} MB/s;"
                f" the registry received {stored / 1e6:.0f} MB)")
        if stored < size * 0.95:
            raise NotAvailable(f"{name}: the registry holds {stored} bytes after the push, "
                               f"not the image's {size}")
    return min(pulls), min(pushes)


def _portside_side(ctx: Context, work: Path, registry: _Registry, layers: list[str],
                   size: int, out: dict[str, Any]) -> None:
    try:
        with running(work / "portside") as ps:
            missing = []
            status, message = ps.probe("POST", PULL_PROBE)
            if status in (404, 405):
                missing.append(f"POST /images/create (it answers {status}: {message[:60]})")
            if ps.unserved("POST", PUSH_PROBE):
                missing.append("POST /images/{name}/push (no route)")
            if missing:
                raise NotAvailable(f"portside's daemon does not serve {' or '.join(missing)} yet")
            docker = ps.docker_client(work / "portside-cli")
            hexes = {d.split(":", 1)[1] for d in layers}

            def leftovers() -> list[Path]:
                return [p for p in ps.root.rglob("*") if p.name in hexes]

            out["portside pull"], out["portside push"] = _side(
                ctx, "portside", docker, registry, size, leftovers)
    except NotAvailable as exc:
        out["portside error"] = str(exc)


def _docker_side(ctx: Context, registry: _Registry, size: int, out: dict[str, Any]) -> None:
    dk: Docker | None = None
    try:
        dk = Docker(ctx, insecure_registries=[registry.host])
        out["docker pull"], out["docker push"] = _side(ctx, f"dockerd {dk.version}",
                                                       dk.client_for(), registry, size)
    except NotAvailable as exc:
        out["docker error"] = str(exc)
    finally:
        if dk is not None:
            dk.stop()


def _measure(ctx: Context) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="ps-pull-bench-", dir="/var/tmp"))
    out: dict[str, Any] = {}
    try:
        store_dir = work / "source"
        layers, size = _make_image(ctx, store_dir)
        out["size"] = size
        registry = _Registry(work, store_dir)
        _portside_side(ctx, work, registry, layers, size, out)
        _docker_side(ctx, registry, size, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _figures(ctx: Context) -> dict[str, Any]:
    if not _CACHE:
        _CACHE.update(_measure(ctx))
    return _CACHE


def _row(ctx: Context, what: str) -> Result:
    f = _figures(ctx)
    return versus(f.get(f"portside {what}"), f.get(f"docker {what}"), "s",
                  f"`docker {what}` through dockerd", f.get("portside error", "not measured"),
                  f.get("docker error", "not measured"))


@register("`docker pull` 512 MB (4 layers): portside daemon vs dockerd", goal=0.5,
          higher_is_better=False, order=63)
def pull(ctx: Context) -> Result:
    return _row(ctx, "pull")


@register("`docker push` 512 MB (4 layers): portside daemon vs dockerd", goal=0.5,
          higher_is_better=False, order=63)
def push(ctx: Context) -> Result:
    return _row(ctx, "push")
