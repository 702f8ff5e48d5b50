"""Registry push/pull of an image with a 512 MB layer, and request rates under 32 connections.

Every figure stands beside the distribution registry (Debian `docker-registry`) measured in
the same run: skopeo pushes to and pulls from each server; the portside client pushes to
and pulls from the portside server; `ab -k -c 32` measures manifest GETs and blob HEADs.
Both servers listen on 127.0.0.1 with storage under the benchmark's scratch directory and
are stopped afterwards. Push and pull are measured together and remembered for the run.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks import Context, NotAvailable, Result, best_of, register, run_quiet
from benchmarks.registry_servers import (
    counting_proxy,
    distribution_server,
    portside_server,
    skopeo_copy,
)

LAYER_MB = 512
RUNS = 2
REQUESTS = 20000
_figures: dict[str, float] = {}


def _image(ctx: Context) -> tuple[Path, Path, str]:
    """A store holding one image with a 512 MB layer, and the same image as an OCI layout."""
    from portside.oci import mediatypes as mt
    from portside.oci.model import canonical_json, host_platform
    from portside.store.images import ImageStore

    store_dir, layout = ctx.workdir / "store", ctx.workdir / "layout"
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    store = ImageStore(store_dir)
    try:
        source = ctx.workdir / "layer.tar"
        with open(source, "wb") as f:  # incompressible: what travels is what was written
            for _ in range(LAYER_MB):
                f.write(os.urandom(1 << 20))
        with open(source, "rb") as f:
            layer = store.content.ingest(f)
        plat = host_platform()
        config = canonical_json({"architecture": plat.architecture, "os": plat.os,
                                 "rootfs": {"type": "layers", "diff_ids": [layer]},
                                 "config": {"Cmd": ["sh"]}})
        config_digest = store.content.put(config)
        manifest = canonical_json({
            "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": mt.OCI_LAYER, "digest": layer, "size": LAYER_MB << 20}]})
        image = store.add_image(manifest, ["bench/app:1"])
        for digest in (image.manifest_digest, config_digest, layer):
            os.link(store.content.path(digest), blobs / digest[7:])
        (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
            "mediaType": mt.OCI_MANIFEST, "digest": image.manifest_digest, "size": len(manifest),
            "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}))
        source.unlink()
        return store_dir, layout, image.manifest_digest
    finally:
        store.db.close()


def _skopeo(ctx: Context, server: Any, layout: Path) -> tuple[float, float]:
    """Seconds for skopeo to push the layout and to pull it back (best of RUNS), each push
    into a fresh server so the layer really travels."""
    pushes = []
    out = ctx.workdir / "pulled"
    for run in range(RUNS):
        root = ctx.workdir / f"server{run}"
        with server(root) as host:
            dest = f"docker://{host}/bench/skopeo:1"
            start = time.perf_counter()
            skopeo_copy(f"oci:{layout}:v1", dest)
            pushes.append(time.perf_counter() - start)
            if run == RUNS - 1:
                pulled = best_of(RUNS, lambda d=dest: skopeo_copy(d, f"oci:{out}:x"),
                                 before=lambda: subprocess.run(["rm", "-rf", str(out)]))
        subprocess.run(["rm", "-rf", str(root), str(out)])
    return min(pushes), pulled


def _portside_client(ctx: Context, host: str, store_dir: Path) -> tuple[float, float]:
    from portside.registry import transfer
    from portside.store.images import ImageStore

    store = ImageStore(store_dir)
    count = iter(range(100))
    try:
        def push() -> None:
            ref = f"{host}/bench/client{next(count)}:1"  # a fresh repository: no mount source
            store.tag("bench/app:1", ref)
            asyncio.run(transfer.push(store, ref))

        push_time = best_of(RUNS, push, before=lambda: _forget_sources(store_dir))
    finally:
        store.db.close()

    def pull() -> None:
        target = ImageStore(ctx.workdir / "pull-store")
        try:
            asyncio.run(transfer.pull(target, f"{host}/bench/client0:1"))
        finally:
            target.db.close()

    pull_time = best_of(RUNS, pull,
                        before=lambda: subprocess.run(["rm", "-rf", str(ctx.workdir / "pull-store")]))
    return push_time, pull_time


def _forget_sources(store_dir: Path) -> None:
    (store_dir / "registry-sources.db").unlink(missing_ok=True)


def _measure_transfers(ctx: Context) -> None:
    if _figures.get("dist push"):
        return
    ctx.ensure_debs("skopeo")
    store_dir, layout, _ = _image(ctx)
    mb = (LAYER_MB << 20) / 1e6
    push, pull = _skopeo(ctx, lambda root: distribution_server(ctx, root), layout)
    _figures["dist push"], _figures["dist pull"] = mb / push, mb / pull
    ctx.log(f"skopeo → distribution: push {mb / push:.0f} MB/s, pull {mb / pull:.0f} MB/s")
    push, pull = _skopeo(ctx, portside_server, layout)
    _figures["skopeo push"], _figures["skopeo pull"] = mb / push, mb / pull
    ctx.log(f"skopeo → portside: push {mb / push:.0f} MB/s, pull {mb / pull:.0f} MB/s")
    with portside_server(ctx.workdir / "ours") as host:
        push, pull = _portside_client(ctx, host, store_dir)
    _figures["client push"], _figures["client pull"] = mb / push, mb / pull
    ctx.log(f"portside → portside: push {mb / push:.0f} MB/s, pull {mb / pull:.0f} MB/s")


def _transfer(ctx: Context, ours: str, theirs: str, label: str) -> Result:
    _measure_transfers(ctx)
    return Result(_figures[ours], _figures[theirs], "MB/s", label)


@register("registry push 512 MB: skopeo → portside", goal=2.0, higher_is_better=True, order=60)
def skopeo_push(ctx: Context) -> Result:
    return _transfer(ctx, "skopeo push", "dist push", "skopeo → distribution")


@register("registry pull 512 MB: skopeo ← portside", goal=2.0, higher_is_better=True, order=60)
def skopeo_pull(ctx: Context) -> Result:
    return _transfer(ctx, "skopeo pull", "dist pull", "skopeo ← distribution")


@register("registry push 512 MB: portside client → portside", goal=2.0, higher_is_better=True,
          order=60)
def client_push(ctx: Context) -> Result:
    return _transfer(ctx, "client push", "dist push", "skopeo → distribution")


@register("registry pull 512 MB: portside client ← portside", goal=2.0, higher_is_better=True,
          order=60)
def client_pull(ctx: Context) -> Result:
    return _transfer(ctx, "client pull", "dist pull", "skopeo ← distribution")


def _small_image(host: str, ctx: Context) -> tuple[str, str]:
    """Push a one-layer image with skopeo; returns (manifest path, blob path) to hammer."""
    layout = ctx.workdir / f"small-{host.replace(':', '-')}"
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    import hashlib

    from portside.oci import mediatypes as mt
    from portside.oci.model import canonical_json

    def put(data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        (blobs / digest[7:]).write_bytes(data)
        return digest

    layer = os.urandom(4096)
    config = canonical_json({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": [put(layer)]}})
    manifest = canonical_json({
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": put(config), "size": len(config)},
        "layers": [{"mediaType": mt.OCI_LAYER, "digest": put(layer), "size": len(layer)}]})
    digest = put(manifest)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": mt.OCI_MANIFEST, "digest": digest, "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}))
    skopeo_copy(f"oci:{layout}:v1", f"docker://{host}/bench/small:1")
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    return "/v2/bench/small/manifests/1", f"/v2/bench/small/blobs/{layer_digest}"


def _rate(host: str, path: str, head: bool) -> float:
    args = ["ab", "-q", "-k", "-c", "32", "-n", str(REQUESTS),
            "-H", "Accept: application/vnd.oci.image.manifest.v1+json"]
    if head:
        args.append("-i")
    result = subprocess.run([*args, f"http://{host}{path}"], capture_output=True, text=True,
                            timeout=600)
    failed = re.search(r"Non-2xx responses:\s+(\d+)", result.stdout)
    rate = re.search(r"Requests per second:\s+([\d.]+)", result.stdout)
    if result.returncode != 0 or rate is None or failed:
        raise NotAvailable(f"ab failed against {host}: {result.stderr.strip()[-120:]}")
    return float(rate[1])


def _requests(ctx: Context, head: bool) -> Result:
    ctx.ensure_debs("skopeo", "apache2-utils")
    figures = []
    for start in (lambda: distribution_server(ctx, ctx.workdir / "dist"),
                  lambda: portside_server(ctx.workdir / "ours")):
        with start() as host:
            manifest, blob = _small_image(host, ctx)
            _rate(host, blob if head else manifest, head)  # warm up
            figures.append(max(_rate(host, blob if head else manifest, head) for _ in range(2)))
    return Result(figures[1], figures[0], "req/s", "distribution")


@register("registry manifest GETs/s (32 connections)", goal=2.0, higher_is_better=True, order=61)
def manifest_gets(ctx: Context) -> Result:
    return _requests(ctx, head=False)


@register("registry blob HEADs/s (32 connections)", goal=2.0, higher_is_better=True, order=61)
def blob_heads(ctx: Context) -> Result:
    return _requests(ctx, head=True)


def _curl(ctx: Context, server: Any, root: Path, blob: Path, digest: str) -> tuple[float, float]:
    """Seconds for a plain curl upload (POST, then PUT with the body) and a plain GET."""
    with server(root) as host:
        head = subprocess.run(["curl", "-s", "-D", "-", "-o", "/dev/null", "-X", "POST",
                               f"http://{host}/v2/bench/curl/blobs/uploads/"],
                              capture_output=True, text=True, check=True).stdout
        location = next(line.split(":", 1)[1].strip() for line in head.splitlines()
                        if line.lower().startswith("location:"))
        if location.startswith("/"):
            location = f"http://{host}{location}"
        url = f"{location}{'&' if '?' in location else '?'}digest={digest}"
        start = time.perf_counter()
        run_quiet(["curl", "-sf", "-o", "/dev/null", "-X", "PUT", "-T", str(blob),
                   "-H", "Content-Type: application/octet-stream", url])
        put = time.perf_counter() - start
        get = best_of(3, lambda: run_quiet(
            ["curl", "-sf", "-o", "/dev/null", f"http://{host}/v2/bench/curl/blobs/{digest}"]))
    subprocess.run(["rm", "-rf", str(root)])
    return put, get


def _measure_curl(ctx: Context) -> None:
    if _figures.get("curl dist put"):
        return
    blob = ctx.workdir / "blob.bin"
    with open(blob, "wb") as f:
        for _ in range(LAYER_MB):
            f.write(os.urandom(1 << 20))
    digest = "sha256:" + subprocess.run(["sha256sum", str(blob)], capture_output=True, text=True,
                                        check=True).stdout.split()[0]
    mb = (LAYER_MB << 20) / 1e6
    for key, server in (("dist", lambda root: distribution_server(ctx, root)),
                        ("ours", portside_server)):
        put, get = min(_curl(ctx, server, ctx.workdir / f"curl-{key}-{i}", blob, digest)
                       for i in range(RUNS))
        _figures[f"curl {key} put"], _figures[f"curl {key} get"] = mb / put, mb / get
        ctx.log(f"curl ↔ {key}: PUT {mb / put:.0f} MB/s, GET {mb / get:.0f} MB/s")


@register("registry ingest 512 MB: curl PUT → portside", goal=2.0, higher_is_better=True, order=60)
def curl_put(ctx: Context) -> Result:
    _measure_curl(ctx)
    return Result(_figures["curl ours put"], _figures["curl dist put"], "MB/s", "curl → distribution")


@register("registry stream 512 MB: curl GET ← portside", goal=2.0, higher_is_better=True, order=60)
def curl_get(ctx: Context) -> Result:
    _measure_curl(ctx)
    return Result(_figures["curl ours get"], _figures["curl dist get"], "MB/s", "curl ← distribution")


@register("registry re-push, all layers present: bytes sent", goal=1.0, higher_is_better=False,
          order=62)
def repush(ctx: Context) -> Result:
    """`portside push` of an image the registry has, beside skopeo doing the same against
    the distribution registry: both should send requests and the manifest, no layer."""
    from portside.registry import transfer
    from portside.store.images import ImageStore

    ctx.ensure_debs("skopeo")
    global LAYER_MB
    saved, LAYER_MB = LAYER_MB, 64
    try:
        store_dir, layout, _ = _image(ctx)
    finally:
        LAYER_MB = saved
    figures = []
    with distribution_server(ctx, ctx.workdir / "dist") as host, counting_proxy(host) as (via, n):
        skopeo_copy(f"oci:{layout}:v1", f"docker://{via}/bench/app:1")
        first = n["up"]
        skopeo_copy(f"oci:{layout}:v1", f"docker://{via}/bench/app:1")
        figures.append((n["up"] - first) / 1e3)
    with portside_server(ctx.workdir / "ours") as host, counting_proxy(host) as (via, n):
        store = ImageStore(store_dir)
        try:
            store.tag("bench/app:1", f"{via}/bench/app:1")
            asyncio.run(transfer.push(store, f"{via}/bench/app:1"))
            first = n["up"]
            asyncio.run(transfer.push(store, f"{via}/bench/app:1"))
            figures.append((n["up"] - first) / 1e3)
        finally:
            store.db.close()
    ctx.log(f"re-push: skopeo → distribution {figures[0]:.1f} kB, portside {figures[1]:.1f} kB")
    return Result(figures[1], figures[0], "kB", "skopeo → distribution")
