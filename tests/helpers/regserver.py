"""Run a registry server in a thread of the test process, on 127.0.0.1 and a free port;
`serve_registry` logs the requests it answers, and `publish` puts an image there."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from helpers.imagefactory import add_image

from portside.registry import server as srv
from portside.registry import transfer
from portside.store.images import ImageStore


@dataclass
class RunningRegistry:
    registry: srv.Registry
    port: int
    loop: asyncio.AbstractEventLoop

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def run_registry(registry: srv.Registry, ssl_context: Any = None,
                 middlewares: Sequence[Any] = ()) -> tuple[RunningRegistry, Callable[[], None]]:
    """Serve `registry` (behind `middlewares`, outermost first) until the returned stop."""
    app = srv.make_app(registry)
    app.middlewares.extend(middlewares)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, Any] = {}

    def main() -> None:
        asyncio.set_event_loop(loop)
        runner, port = loop.run_until_complete(srv.serve(app, "127.0.0.1", 0, ssl_context))
        box["runner"], box["port"] = runner, port
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert ready.wait(30)

    def stop() -> None:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        registry.storage.close()

    return RunningRegistry(registry, box["port"], loop), stop


@dataclass
class LoggedRegistry:
    """A registry in a thread of the test that logs every request it answers, so a test can
    assert from the registry's side (which blobs were fetched, whether any upload happened)."""

    port: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def blob_gets(self) -> list[str]:
        return [p for m, p in self.requests if m == "GET" and "/blobs/sha256:" in p]

    def uploads(self) -> list[str]:
        return [p for m, p in self.requests if m in ("POST", "PATCH", "PUT") and "/blobs/" in p]


def serve_registry(root: Path, htpasswd: Path | None = None) -> tuple[LoggedRegistry,
                                                                      Callable[[], None]]:
    """`run_registry` on a registry at `root`, logging each request's method and path."""
    logged = LoggedRegistry()

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        logged.requests.append((request.method, request.path))
        response: web.StreamResponse = await handler(request)
        return response

    running, stop = run_registry(srv.open_registry(root, htpasswd=htpasswd),
                                 middlewares=[record])
    logged.port = running.port
    return logged, stop


def publish(tmp_path: Path, ref: str, layers: int = 2, size: int = 64 << 10,
            auth: tuple[str, str] | None = None) -> ImageStore:
    """Push an image of random layers to a registry from a store of its own."""
    other = ImageStore(tmp_path / f"other-{abs(hash(ref))}")
    files = [{f"data{i}.bin": os.urandom(size)} for i in range(layers)]
    add_image(other, files, tags=(ref,), config={"Cmd": ["sh"], "Labels": {"team": "blue"}})
    asyncio.run(transfer.push(other, ref, auth=auth))
    return other


def http(reg: RunningRegistry, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP request: (status, headers, body)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", reg.port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.headers), resp.read()
    finally:
        conn.close()


def error_code(body: bytes) -> str:
    import json

    return str(json.loads(body)["errors"][0]["code"])


class CuttingProxy:
    """A TCP forwarder to a registry that drops one connection once it has carried `cut_after`
    bytes in the chosen direction ("up": client to server, "down": server to client)."""

    def __init__(self, target_port: int, cut_after: int, direction: str) -> None:
        self.target_port = target_port
        self.cut_after = cut_after
        self.direction = direction
        self.bytes = {"up": 0, "down": 0}
        self.cuts = 0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def main() -> None:
            asyncio.set_event_loop(self.loop)
            self.server = self.loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", 0))
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()
            self.loop.run_forever()
            self.server.close()
            self.loop.run_until_complete(self.server.wait_closed())
            self.loop.close()

        self.thread = threading.Thread(target=main, daemon=True)
        self.thread.start()
        assert ready.wait(30)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        state = {"carried": 0}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, way: str) -> None:
            try:
                while data := await src.read(65536):
                    self.bytes[way] += len(data)
                    if way == self.direction and self.cuts == 0:
                        state["carried"] += len(data)
                        if state["carried"] > self.cut_after:
                            self.cuts += 1
                            writer.transport.abort()
                            up_writer.transport.abort()
                            return
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.close()

        await asyncio.gather(pump(reader, up_writer, "up"), pump(up_reader, writer, "down"))

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


def self_signed(directory: Any) -> tuple[Any, Any]:
    """A self-signed certificate for 127.0.0.1 (cert.pem, key.pem) in `directory`."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path
