"""Byte streams of the Docker API: hijacked connections (the framing, conmon's attach socket
and the pumps are `portside.engine.streams`, shared with the in-process engine).

Attach and exec upgrade the HTTP connection (`Upgrade: tcp`, answered with 101) and then
carry stdin one way and output the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import socket
import struct
import termios
from typing import Any

from aiohttp import web

from portside.engine.streams import STDERR, STDOUT, frame

__all__ = ["MULTIPLEXED", "RAW", "STDERR", "STDOUT", "Hijacked", "frame"]

RAW = "application/vnd.docker.raw-stream"
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"


class _StdinParser:
    """Receives what the client sends after the upgrade (stdin), for aiohttp's protocol."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.reader.feed_data(data)
        return False, b""

    def feed_eof(self) -> None:
        if not self.reader.at_eof():
            self.reader.feed_eof()


def _keep_half_open() -> None:
    """A client half-closing a hijacked connection (its stdin ended) must not close our
    direction: asyncio closes a transport whose protocol's eof_received returns a false
    value, and aiohttp's returns None. Hijacked connections say True and pass the EOF on."""
    from aiohttp.web_protocol import RequestHandler

    original = RequestHandler.eof_received
    if getattr(original, "_portside", False):
        return

    def eof_received(self: Any) -> bool | None:
        parser = getattr(self, "_payload_parser", None)
        if isinstance(parser, _StdinParser):
            parser.feed_eof()
            return True
        return original(self)

    eof_received._portside = True  # type: ignore[attr-defined]
    RequestHandler.eof_received = eof_received  # type: ignore[method-assign,assignment]


_keep_half_open()


class Hijacked:
    """An upgraded connection: `write` output, read stdin from `stdin`."""

    def __init__(self, request: web.Request, tty: bool) -> None:
        self.request = request
        self.tty = tty
        self.stdin = asyncio.StreamReader()
        self.resp: web.StreamResponse | None = None
        self.closed = False
        self.headers_read = False

    async def open(self) -> None:
        upgrade = self.request.headers.get("Upgrade", "").lower() == "tcp"
        headers = {"Content-Type": RAW if self.tty else MULTIPLEXED}
        if upgrade:
            headers.update(Connection="Upgrade", Upgrade="tcp")
        resp = web.StreamResponse(status=101 if upgrade else 200, headers=headers)
        resp.force_close()
        await resp.prepare(self.request)
        self.resp = resp
        proto: Any = self.request.protocol
        with contextlib.suppress(AssertionError):
            proto.set_parser(_StdinParser(self.stdin))

    async def _wait_headers_read(self) -> None:
        """Hold the first output until the client has read the response's headers (at most
        a quarter second). docker-py reads a hijacked stream from the raw socket beneath its
        HTTP parser, so output that reaches it together with the headers is swallowed by the
        parser's buffer and lost. On a unix socket the bytes the peer has not read yet are
        the sender's SIOCOUTQ (== TIOCOUTQ)."""
        self.headers_read = True
        transport = self.request.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if transport is None or sock is None or sock.family != socket.AF_UNIX:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 0.25
        while loop.time() < deadline:
            try:
                unread = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ,
                                                        b"\0\0\0\0"))[0]
            except OSError:
                return
            if unread == 0 and transport.get_write_buffer_size() == 0:
                return
            await asyncio.sleep(0.0005)

    async def write(self, stream: int, data: bytes) -> bool:
        if self.closed or not data or self.resp is None:
            return not self.closed
        if not self.headers_read:
            await self._wait_headers_read()
        try:
            await self.resp.write(data if self.tty else frame(stream, data))
            return True
        except (ConnectionError, RuntimeError):
            self.closed = True
            return False

    async def close(self) -> None:
        if self.resp is not None and not self.closed:
            with contextlib.suppress(Exception):
                await self.resp.write_eof()
        self.closed = True
        transport = self.request.transport
        if transport is not None:
            transport.close()
