"""A container's stdio as a byte stream: Docker's multiplexed frames, conmon's attach
socket, and where the output goes (`Sink`: the daemon's hijacked HTTP connection, or the
engine side of a socket pair that `LocalEngine` hands its caller).

Docker's stream format (without a TTY): each frame is an 8-byte header — stream type
(0 stdin, 1 stdout, 2 stderr), three zero bytes, big-endian uint32 length — and the data.
With a TTY the stream is raw. Either way the same client code reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Protocol

from portside.engine.containers import Engine
from portside.engine.detachkeys import Detector
from portside.engine.state import Container
from portside.errors import PortsideError

STDOUT, STDERR = 1, 2

# conmon's attach socket: SOCK_SEQPACKET, each packet from conmon starts with its pipe.
CONMON_STDOUT, CONMON_STDERR = 2, 3
CONMON_BUF = 8192 + 1


def frame(stream: int, data: bytes) -> bytes:
    return bytes((stream, 0, 0, 0)) + len(data).to_bytes(4, "big") + data


class Sink(Protocol):
    """Where a container's or an exec's output goes, and its stdin comes from."""

    @property
    def stdin(self) -> asyncio.StreamReader: ...
    async def write(self, stream: int, data: bytes) -> bool:
        """Send `data` of `stream` (framed unless TTY); False once the peer is gone."""
        ...


class SocketSink:
    """The engine side of a connected socket: output written framed (raw with a TTY),
    what the peer sends read into `stdin`. Made and used on the engine's loop."""

    def __init__(self, sock: socket.socket, tty: bool) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.tty = tty
        self.closed = False
        self._stdin = asyncio.StreamReader()
        self._reader = asyncio.ensure_future(self._read())

    @property
    def stdin(self) -> asyncio.StreamReader:
        return self._stdin

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = await loop.sock_recv(self.sock, 65536)
            except OSError:
                data = b""
            if not data:
                self._stdin.feed_eof()  # the peer shut its side down: stdin ends
                return
            self._stdin.feed_data(data)

    async def write(self, stream: int, data: bytes) -> bool:
        if self.closed or not data:
            return not self.closed
        try:
            await asyncio.get_running_loop().sock_sendall(
                self.sock, data if self.tty else frame(stream, data))
            return True
        except OSError:
            self.closed = True
            return False

    async def close(self) -> None:
        """End the output: the peer reads EOF."""
        self.closed = True
        self._reader.cancel()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


async def pump_attach(sock: socket.socket, out: Sink, stdout: bool, stderr: bool) -> None:
    """conmon attach socket -> client, until conmon closes it or the client goes away."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            data = await loop.sock_recv(sock, CONMON_BUF)
        except OSError:
            return
        if not data:
            return
        pipe, payload = data[0], data[1:]
        if pipe == CONMON_STDERR and stderr:
            ok = await out.write(STDERR, payload)
        elif pipe == CONMON_STDOUT and stdout:
            ok = await out.write(STDOUT, payload)
        else:
            continue
        if not ok:
            return


class Discard:
    """The sink of a detached stream: output is read and dropped (so the process never
    blocks on a full pipe) until it ends."""

    @property
    def stdin(self) -> asyncio.StreamReader:
        return asyncio.StreamReader()

    async def write(self, stream: int, data: bytes) -> bool:
        return True


async def pump_stdin(reader: asyncio.StreamReader, sock: socket.socket,
                     detach_keys: bytes | None = None) -> bool:
    """client stdin -> conmon; on the client's EOF, close the container's stdin. True
    when the client typed the detach keys (the container's stdin stays open)."""
    loop = asyncio.get_running_loop()
    detector = Detector(detach_keys) if detach_keys else None
    while True:
        data = await reader.read(8192)
        if not data:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
            return False
        detached = False
        if detector is not None:
            data, detached = detector.feed(data)
        try:
            if data:
                await loop.sock_sendall(sock, data)
        except OSError:
            return False
        if detached:
            return True


async def _drain(sock: socket.socket) -> None:
    try:
        await pump_attach(sock, Discard(), False, False)
    finally:
        sock.close()


async def attach(engine: Engine, c: Container, out: Sink, *, logs: bool, stream: bool,
                 want_in: bool, want_out: bool, want_err: bool,
                 detach_keys: bytes | None = None) -> None:
    """Docker's attach: the log so far (`logs`), then the live output (`stream`) until the
    container's conmon closes it, with the sink's stdin fed to the container (`want_in`),
    or until the client types `detach_keys`. A detached client leaves the container
    running with its stdin open: the connection to conmon stays, drained, until the
    container ends (closing it would close the stdin of a `StdinOnce` container)."""
    if logs:
        from portside.runtime import read_logs

        entries = await asyncio.to_thread(lambda: list(read_logs(engine.log_path(c.id))))
        for e in entries:
            kind = STDERR if e.stream == "stderr" else STDOUT
            if (kind == STDOUT and want_out) or (kind == STDERR and want_err):
                await out.write(kind, e.data)
    if not stream:
        return
    try:
        sock = await engine.attach_socket(c.id)
    except (PortsideError, OSError, asyncio.CancelledError):
        return
    output = asyncio.ensure_future(pump_attach(sock, out, want_out, want_err))
    feeder = asyncio.ensure_future(pump_stdin(out.stdin, sock, detach_keys)) if want_in \
        else None
    detached = False
    try:
        if feeder is not None:
            await asyncio.wait((output, feeder), return_when=asyncio.FIRST_COMPLETED)
            detached = feeder.done() and not feeder.cancelled() and feeder.result() is True
        if not detached:
            await output
    finally:
        if feeder is not None:
            feeder.cancel()
        output.cancel()
        if detached:
            asyncio.get_running_loop().create_task(_drain(sock))
        else:
            sock.close()
