"""Servers for the registry benchmarks: portside's and the distribution registry, on
127.0.0.1 and free ports with storage where the caller says, stopped on exit; a counting TCP
forwarder; skopeo copies that keep layers as they are."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks import Context, NotAvailable, run_quiet


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[Any]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def portside_server(root: Path, addr: str = "127.0.0.1:0") -> Iterator[str]:
    """`portside registry serve` on `addr` (a free port by default); yields HOST:PORT."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "portside", "registry", "serve", "--addr", addr,
         "--root", str(root)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("listening on "):
            raise NotAvailable("portside registry serve did not start")
        yield line.split("://", 1)[1].strip()
    finally:
        stop(proc)


@contextmanager
def distribution_server(ctx: Context, root: Path) -> Iterator[str]:
    ctx.ensure_debs("docker-registry")
    port = free_port()
    config = root.with_suffix(".yml")
    config.write_text(json.dumps({
        "version": 0.1, "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(root)}},
        "http": {"addr": f"127.0.0.1:{port}"}}))
    proc = subprocess.Popen(["docker-registry", "serve", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(400):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None:
                raise NotAvailable("docker-registry did not start")
            time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        stop(proc)


def skopeo_copy(source: str, dest: str) -> None:
    # --preserve-digests: skopeo sends the layer as it is (it would gzip an uncompressed one)
    run_quiet(["skopeo", "copy", "--preserve-digests", "--src-tls-verify=false",
               "--dest-tls-verify=false", source, dest])


@contextmanager
def counting_proxy(target: str) -> Iterator[tuple[str, dict[str, int]]]:
    """A TCP forwarder to `target` counting the bytes clients send (request lines, headers
    and bodies): what a push really puts on the wire."""
    import threading

    counted = {"up": 0}
    loop = asyncio.new_event_loop()
    host, port = target.rsplit(":", 1)
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, int(port))

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, up: bool) -> None:
            try:
                while data := await src.read(1 << 16):
                    if up:
                        counted["up"] += len(data)
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False))

    def main() -> None:
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0))
        box["port"] = server.sockets[0].getsockname()[1]
        ready.set()
        loop.run_forever()
        server.close()
        loop.close()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    ready.wait(30)
    try:
        yield f"127.0.0.1:{box['port']}", counted
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
