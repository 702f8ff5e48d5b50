"""`docker build` through portside's daemon against dockerd 20.10's BuildKit and classic builder.

The context and the 10 steps are benchmarks/build.py's (about 100 MB in 1,000 files, no
RUN), with `FROM busybox` instead of `FROM scratch`: the base comes from `portside image
bootstrap busybox`, in portside's root as the daemon driver makes it, and `docker load`ed
into dockerd from `portside save --format docker`. Three builders, each through a
`docker` client as users run it:

- portside's daemon, the classic protocol (`DOCKER_BUILDKIT=0`, the client first on PATH);
- dockerd 20.10 with its embedded BuildKit (`DOCKER_BUILDKIT=1`). The 28.x client on PATH
  builds with BuildKit only through the buildx plugin, which is not installed here, so
  this run uses Debian's 20.10 client, /usr/bin/docker, which has BuildKit built in;
- dockerd 20.10's classic builder (`DOCKER_BUILDKIT=0`, the client first on PATH).

A first build starts from nothing but the base image: before each, `docker rmi -f` of
the tag (the classic builder's intermediate images go with it) and `docker builder prune
-af` (BuildKit's cache, context included; portside's build cache), then a check that the
daemon's images (`docker images -aq`) are the base image's alone. A fully cached build
follows a build of the same context, and is checked to give the same image ID. Seconds,
best of FIRST_RUNS and CACHED_RUNS; all measured the first time any of these entries runs.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import Context, NotAvailable, Result, register, versus
from benchmarks._docker import Docker, DockerClient
from benchmarks._portside import running
from benchmarks.build import DOCKERFILE, build_context

FIRST_RUNS = 2
CACHED_RUNS = 3
TAG = "bench:1"
BASE = "busybox"
DEBIAN_CLIENT = "/usr/bin/docker"  # docker.io's 20.10 client, BuildKit built in
_CACHE: dict[str, Any] = {}


def busybox_dockerfile() -> str:
    dockerfile = DOCKERFILE.replace("FROM scratch\n", f"FROM {BASE}\n", 1)
    assert dockerfile != DOCKERFILE, "benchmarks/build.py's Dockerfile no longer starts FROM scratch"
    return dockerfile


def _images(docker: DockerClient) -> set[str]:
    return set(docker("images", "-aq", "--no-trunc").split())


def _builds(ctx: Context, name: str, docker: DockerClient, top: Path) -> tuple[float, float]:
    """Best seconds of a first build and of a fully cached one of `top` through `docker`."""
    base = _images(docker)

    def reset() -> None:
        docker.ok("rmi", "-f", TAG)
        docker("builder", "prune", "-af")
        left = _images(docker) - base
        if left:
            raise NotAvailable(f"{name}: images left after rmi and builder prune: "
                               f"{sorted(left)[:2]}")

    build = ("build", "-q", "-t", TAG, str(top))
    firsts = []
    for _ in range(FIRST_RUNS):
        reset()
        firsts.append(docker.timed(*build))
    ctx.log(f"{name}: first build {', '.join(f'{t:.2f}' for t in firsts)} s")
    built = docker("image", "inspect", "-f", "{{.Id}}", TAG).strip()
    cached = [docker.timed(*build) for _ in range(CACHED_RUNS)]
    again = docker("image", "inspect", "-f", "{{.Id}}", TAG).strip()
    ctx.log(f"{name}: cached build {', '.join(f'{t:.2f}' for t in cached)} s")
    if again != built:
        raise NotAvailable(f"{name}: the cached build made another image ({again[:19]}, "
                           f"not {built[:19]}): not fully cached")
    reset()
    return min(firsts), min(cached)


def _portside_side(ctx: Context, work: Path, top: Path, out: dict[str, Any]) -> Path | None:
    """portside's figures into `out`; returns the base image saved for dockerd."""
    archive: Path | None = None
    try:
        with running(work / "portside") as ps:
            archive = work / "busybox.tar"
            ps("save", "--format", "docker", "-o", str(archive), BASE)
            if ps.unserved("POST", "/build"):
                raise NotAvailable("portside's daemon does not serve POST /build yet (no route)")
            docker = ps.docker_client(work / "portside-cli")
            out["portside first"], out["portside cached"] = _builds(
                ctx, "portside (classic protocol)", docker.with_env(DOCKER_BUILDKIT="0"), top)
    except NotAvailable as exc:
        out["portside error"] = str(exc)
    return archive


def _docker_side(ctx: Context, archive: Path, top: Path, out: dict[str, Any]) -> None:
    dk: Docker | None = None
    try:
        dk = Docker(ctx, archive)
        try:
            if not Path(DEBIAN_CLIENT).exists():
                raise NotAvailable(f"no {DEBIAN_CLIENT} (docker.io's client, with BuildKit)")
            buildkit = dk.client_for(DEBIAN_CLIENT, DOCKER_BUILDKIT="1")
            out["buildkit first"], out["buildkit cached"] = _builds(
                ctx, f"dockerd {dk.version} BuildKit", buildkit, top)
        except NotAvailable as exc:
            out["buildkit error"] = str(exc)
        try:
            classic = dk.client_for(DOCKER_BUILDKIT="0")
            out["classic first"], out["classic cached"] = _builds(
                ctx, f"dockerd {dk.version} classic", classic, top)
        except NotAvailable as exc:
            out["classic error"] = str(exc)
    except NotAvailable as exc:
        out["buildkit error"] = out["classic error"] = str(exc)
    finally:
        if dk is not None:
            dk.stop()


def _measure(ctx: Context) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="ps-build-bench-", dir="/var/tmp"))
    out: dict[str, Any] = {}
    try:
        top, _ = build_context(ctx, busybox_dockerfile())
        archive = _portside_side(ctx, work, top, out)
        if archive is None or not archive.exists():
            out["buildkit error"] = out["classic error"] = "no base image from portside"
        else:
            _docker_side(ctx, archive, top, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _figures(ctx: Context) -> dict[str, Any]:
    if not _CACHE:
        _CACHE.update(_measure(ctx))
    return _CACHE


def _row(ctx: Context, kind: str, builder: str, name: str) -> Result:
    f = _figures(ctx)
    return versus(f.get(f"portside {kind}"), f.get(f"{builder} {kind}"), "s", name,
                  f.get("portside error", "not measured"),
                  f.get(f"{builder} error", "not measured"))


BUILDKIT = "dockerd 20.10 BuildKit (`DOCKER_BUILDKIT=1`)"
CLASSIC = "dockerd 20.10 classic builder"


@register("`docker build`, first (10 steps, 100 MB): portside daemon vs BuildKit", goal=0.7,
          higher_is_better=False, order=64)
def first_vs_buildkit(ctx: Context) -> Result:
    return _row(ctx, "first", "buildkit", BUILDKIT)


@register("`docker build`, fully cached (10 steps, 100 MB): portside daemon vs BuildKit",
          goal=0.5, higher_is_better=False, order=64)
def cached_vs_buildkit(ctx: Context) -> Result:
    return _row(ctx, "cached", "buildkit", BUILDKIT)


@register("`docker build`, first (10 steps, 100 MB): portside daemon vs classic builder",
          goal=0.7, higher_is_better=False, order=65)
def first_vs_classic(ctx: Context) -> Result:
    return _row(ctx, "first", "classic", CLASSIC)


@register("`docker build`, fully cached (10 steps, 100 MB): portside daemon vs classic builder",
          goal=0.5, higher_is_better=False, order=65)
def cached_vs_classic(ctx: Context) -> Result:
    return _row(ctx, "cached", "classic", CLASSIC)
