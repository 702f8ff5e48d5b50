"""A small client of the daemon's Docker Engine API over its unix socket.

A minimal HTTP/1.1 over a unix socket. It imports next to nothing, since it is on the
hot path of `portside run`: not aiohttp, not http.client (and the email package it drags
in), not even `socket`, `json` or `pathlib`, whose imports cost `run` ~20 ms here; the C
modules under them (`_socket`, `_json` through `wirejson`) do the work. Error bodies become
the PortsideError class the daemon raised (`errors.from_wire`), else one chosen by status,
so the CLI prints them as one line. When the
socket is absent, the daemon is started detached (logging to $ROOT/daemon.log), like
`portside run` expects. `hijack` opens an upgraded connection for attach/exec streams.
"""

from __future__ import annotations

import os
import sys
import time
from _socket import AF_UNIX, SOCK_STREAM
from _socket import socket as unix_socket

from portside import config
from portside.client import wirejson as json
from portside.errors import Conflict, InvalidArgument, NotFound, PortsideError, from_wire

TYPE_CHECKING = False  # typing costs milliseconds to import on `run`'s hot path
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from portside.engine.interface import LogChunk

API = "/v1.43"
DEFAULT_SOCKET = "/run/portside/portside.sock"
STARTUP_TIMEOUT = 20.0


def socket_answers(path: str | os.PathLike[str]) -> bool:
    """Whether something accepts connections on the unix socket at `path`."""
    s = unix_socket(AF_UNIX, SOCK_STREAM)
    try:
        s.connect(os.fspath(path))
        return True
    except OSError:
        return False
    finally:
        s.close()


class DaemonError(PortsideError):
    """The daemon failed (5xx); Docker's client exits 125 for these on `run`."""

    exit_code = 125


class DaemonUnavailable(PortsideError):
    exit_code = 125


def socket_path() -> str:
    """`PORTSIDE_SOCKET`, else `DOCKER_HOST=unix://...`, else beside a non-default root."""
    if env := os.environ.get("PORTSIDE_SOCKET"):
        return env
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        return host[len("unix://"):]
    root = config.root_dir()
    if os.path.normpath(root) != config.DEFAULT_ROOT_DIR:
        return os.path.join(root, "portside.sock")
    return DEFAULT_SOCKET


class Response:
    """A response read from a socket: status, headers, and the body (Content-Length,
    chunked, or until close) by `read`, `read1` or `readline`."""

    def __init__(self, sock: unix_socket, bodyless: bool = False) -> None:
        self.sock = sock
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise OSError("connection closed before the response headers")
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for line in lines[1:]:
            key, _, value = line.partition(":")
            self.headers[key.strip().lower()] = value.strip()
        self._raw = bytearray(rest)  # undecoded bytes received
        self._body = bytearray()  # decoded body bytes not yet returned
        self._chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        length = self.headers.get("content-length")
        self._left = int(length) if length is not None and not self._chunked else None
        self._chunk_left = 0
        self._eof = bodyless or self.status in (204, 304) or self._left == 0

    def _recv(self) -> bool:
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self._raw += chunk
        return True

    def _fill(self) -> bool:
        """Decode more of the body into `_body`; False at the end of it."""
        if self._eof:
            return False
        if not self._chunked:
            if not self._raw and not self._recv():
                self._eof = True
                return False
            take = len(self._raw) if self._left is None else min(self._left, len(self._raw))
            self._body += self._raw[:take]
            del self._raw[:take]
            if self._left is not None:
                self._left -= take
                self._eof = self._left == 0
            return True
        while True:
            if self._chunk_left > 0:
                if not self._raw and not self._recv():
                    self._eof = True
                    return False
                take = min(self._chunk_left, len(self._raw))
                self._body += self._raw[:take]
                del self._raw[:take]
                self._chunk_left -= take
                if self._chunk_left == 0:
                    self._chunk_left = -2  # the CRLF after the chunk
                return True
            need = 2 if self._chunk_left == -2 else 0
            while b"\r\n" not in self._raw[need:]:
                if not self._recv():
                    self._eof = True
                    return False
            if need:
                del self._raw[:2]
                self._chunk_left = 0
                continue
            line, _, _ = bytes(self._raw).partition(b"\r\n")
            del self._raw[:len(line) + 2]
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self._eof = True
                return False
            self._chunk_left = size

    def read1(self, n: int = 65536) -> bytes:
        if not self._body:
            self._fill()
        out = bytes(self._body[:n])
        del self._body[:n]
        return out

    def read(self) -> bytes:
        while self._fill():
            pass
        out = bytes(self._body)
        self._body.clear()
        self.sock.close()
        return out

    def readline(self) -> bytes:
        while b"\n" not in self._body and self._fill():
            pass
        line, sep, _ = bytes(self._body).partition(b"\n")
        del self._body[:len(line) + len(sep)]
        return line + sep


def error_for(status: int, message: str, body: object = None) -> PortsideError:
    """The error of a failed request: the class the daemon raised (with its facts) when the
    body names one, else one chosen by the status, as for any Docker-API server."""
    typed = from_wire(body) if body is not None else None
    if typed is not None:
        return typed  # its exit code is its class's (`run` makes refusals 125, as Docker)
    if status == 404:
        return NotFound(message)
    if status == 409:
        return Conflict(message)
    if status == 400:
        err: PortsideError = InvalidArgument(message)
        err.exit_code = 125
        return err
    return DaemonError(message)


def _query(params: dict[str, Any] | None) -> str:
    if not params:
        return ""
    items = {}
    for k, v in params.items():
        if v is None:
            continue
        if isinstance(v, bool):
            v = "1" if v else "0"
        elif isinstance(v, dict | list):
            v = json.dumps(v)
        items[k] = str(v)
    return "?" + "&".join(f"{_quote(k)}={_quote(v)}" for k, v in items.items()) if items else ""


def _target(path: str, params: dict[str, Any] | None) -> str:
    """The request target: `path` (which may carry a query of repeated keys already, as
    Docker's `t=` and `changes=`) with `params` added."""
    query = _query(params)
    return path + ("&" + query[1:] if query and "?" in path else query)


_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def _quote(text: str) -> str:
    """Percent-encoding of a query key or value (urllib.parse costs milliseconds to import)."""
    return "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in text.encode())


def _send_chunked(sock: unix_socket, upload: Any) -> None:
    """Stream a binary file as an HTTP/1.1 chunked body."""
    while True:
        block = upload.read(1 << 20)
        if not block:
            break
        sock.sendall(f"{len(block):x}\r\n".encode() + block + b"\r\n")
    sock.sendall(b"0\r\n\r\n")


class Client:
    def __init__(self, path: str | os.PathLike[str] | None = None,
                 autostart: bool = True) -> None:
        self.path = os.fspath(path) if path else socket_path()
        self.autostart = autostart
        self._checked = False

    # -- the daemon --

    def _reachable(self) -> bool:
        return socket_answers(self.path)

    def ensure_daemon(self) -> None:
        """Start `portside daemon` in the background when nothing answers on the socket."""
        if self._checked:
            return
        if not self._reachable():
            if not self.autostart:
                raise DaemonUnavailable(f"cannot connect to the portside daemon at {self.path}")
            import subprocess

            root = config.root_dir()
            os.makedirs(root, mode=0o700, exist_ok=True)
            log_path = os.path.join(root, "daemon.log")
            with open(log_path, "ab") as log:
                subprocess.Popen(
                    [sys.executable, "-m", "portside", "daemon", "--socket", str(self.path)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                    close_fds=True)
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while not self._reachable():
                if time.monotonic() > deadline:
                    raise DaemonUnavailable(f"the portside daemon did not start on {self.path}"
                                            f" (see {log_path})")
                time.sleep(0.02)
        self._checked = True

    # -- plain requests --

    def request(self, method: str, path: str, params: dict[str, Any] | None = None,
                body: Any = None, timeout: float | None = None,
                headers: dict[str, str] | None = None, upload: Any = None,
                content_type: str = "application/x-tar") -> Response:
        """Send a request; returns the response (body unread), or raises on an error.
        `body` is sent as JSON; `upload`, a binary file, is streamed chunked instead."""
        self.ensure_daemon()
        data = json.dumps(body).encode() if body is not None else b""
        head = f"{method} {API}{_target(path, params)} HTTP/1.1\r\nHost: portside\r\nConnection: close\r\n"
        if upload is not None:
            head += f"Transfer-Encoding: chunked\r\nContent-Type: {content_type}\r\n"
        else:
            head += f"Content-Length: {len(data)}\r\n"
            if body is not None:
                head += "Content-Type: application/json\r\n"
        for key, value in (headers or {}).items():
            head += f"{key}: {value}\r\n"
        sock = unix_socket(AF_UNIX, SOCK_STREAM)
        if timeout is not None:
            sock.settimeout(timeout)
        try:
            sock.connect(self.path)
            sock.sendall(head.encode() + b"\r\n" + data)
            if upload is not None:
                _send_chunked(sock, upload)
            resp = Response(sock, bodyless=method == "HEAD")
        except BrokenPipeError:
            resp = Response(sock)  # the daemon answered (refused) before reading it all
        except OSError as exc:
            sock.close()
            raise DaemonUnavailable(f"cannot talk to the portside daemon at {self.path}: {exc}"
                                    ) from None
        if resp.status >= 400:
            raw = b"" if method == "HEAD" else resp.read()  # a HEAD answer has no body
            body = None
            try:
                body = json.loads(raw)
                message = body.get("message") or raw.decode()
            except (ValueError, AttributeError):
                message = raw.decode(errors="replace").strip()
            raise error_for(resp.status, message or f"HTTP {resp.status}", body)
        return resp

    def json(self, method: str, path: str, params: dict[str, Any] | None = None,
             body: Any = None) -> Any:
        resp = self.request(method, path, params, body)
        raw = resp.read()
        return json.loads(raw) if raw.strip() else None

    def get(self, path: str, **params: Any) -> Any:
        return self.json("GET", path, params)

    def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return self.json("POST", path, params, body)

    # -- upgraded connections: attach, exec start --

    def hijack(self, path: str, params: dict[str, Any] | None = None,
               body: Any = None) -> tuple[unix_socket, bytes]:
        """POST with `Upgrade: tcp`; returns the raw socket and bytes already read past the
        response headers."""
        self.ensure_daemon()
        sock = unix_socket(AF_UNIX, SOCK_STREAM)
        try:
            sock.connect(self.path)
        except OSError as exc:
            raise DaemonUnavailable(f"cannot connect to the daemon at {self.path}: {exc}"
                                    ) from None
        data = json.dumps(body).encode() if body is not None else b""
        head = (f"POST {API}{_target(path, params)} HTTP/1.1\r\nHost: portside\r\n"
                "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n\r\n").encode()
        sock.sendall(head + data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                sock.close()
                raise DaemonError("the daemon closed the connection")
            buf += chunk
        header, _, rest = buf.partition(b"\r\n\r\n")
        status_line = header.split(b"\r\n", 1)[0].decode()
        status = int(status_line.split()[1])
        if status >= 400:
            length = 0
            for line in header.split(b"\r\n")[1:]:
                k, _, v = line.decode().partition(":")
                if k.strip().lower() == "content-length":
                    length = int(v)
            while len(rest) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                rest += chunk
            sock.close()
            body = None
            try:
                body = json.loads(rest)
                rest = body.get("message", "").encode() or rest
            except (ValueError, AttributeError):
                pass
            raise error_for(status, rest.decode(errors="replace").strip(), body)
        return sock, rest


def demux(sock: Any, first: bytes, tty: bool, out: Any, err: Any) -> None:
    """Copy a (multiplexed unless tty) stream to the binary files `out`/`err` until EOF."""
    buf = bytearray(first)
    while True:
        if tty:
            if buf:
                out.write(bytes(buf))
                out.flush()
                buf.clear()
        else:
            while len(buf) >= 8:
                size = int.from_bytes(buf[4:8], "big")
                if len(buf) < 8 + size:
                    break
                target = err if buf[0] == 2 else out
                target.write(bytes(buf[8:8 + size]))
                target.flush()
                del buf[:8 + size]
        try:
            chunk = sock.recv(65536)
        except OSError:
            return
        if not chunk:
            return
        buf += chunk


def demux_frames(resp: Response, tty: bool) -> Iterator[LogChunk]:
    """The chunks of a (multiplexed unless tty) response body, as they arrive."""
    from portside.engine.interface import LogChunk

    buf = bytearray()
    while True:
        data = resp.read1(65536)
        if not data:
            return
        if tty:
            yield LogChunk(1, data)
            continue
        buf += data
        while len(buf) >= 8:
            size = int.from_bytes(buf[4:8], "big")
            if len(buf) < 8 + size:
                break
            yield LogChunk(2 if buf[0] == 2 else 1, bytes(buf[8:8 + size]))
            del buf[:8 + size]
