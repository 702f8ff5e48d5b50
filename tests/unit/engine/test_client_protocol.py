"""The CLI's HTTP client and stream demultiplexer against arbitrary splits of the bytes."""

from __future__ import annotations

import io
import socket
import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from portside.client.transport import Response, demux
from portside.engine.api.streams import frame


def _serve(pieces: list[bytes]) -> socket.socket:
    a, b = socket.socketpair()

    def send() -> None:
        try:
            for p in pieces:
                b.sendall(p)
        except BrokenPipeError:
            pass  # the reader stops at the end of the body and closes
        b.close()

    threading.Thread(target=send, daemon=True).start()
    return a


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points:
        out.append(data[last:p])
        last = p
    out.append(data[last:])
    return [p for p in out if p]


def _chunked(body: bytes, sizes: list[int]) -> bytes:
    out, pos = b"", 0
    for size in sizes:
        part = body[pos:pos + size]
        if not part:
            break
        out += f"{len(part):x}\r\n".encode() + part + b"\r\n"
        pos += len(part)
    if pos < len(body):
        out += f"{len(body) - pos:x}\r\n".encode() + body[pos:] + b"\r\n"
    return out + b"0\r\n\r\n"


@settings(deadline=None, max_examples=60)
@given(st.binary(max_size=2000), st.lists(st.integers(1, 300), max_size=8),
       st.lists(st.integers(0, 5000), max_size=10))
def test_chunked_body_any_split(body: bytes, sizes: list[int], cuts: list[int]) -> None:
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + _chunked(body, sizes)
    resp = Response(_serve(_split(raw, cuts)))
    assert resp.status == 200 and resp.read() == body


@settings(deadline=None, max_examples=40)
@given(st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"") + b"\n"),
                max_size=10), st.lists(st.integers(0, 2000), max_size=10))
def test_readline_over_content_length(lines: list[bytes], cuts: list[int]) -> None:
    body = b"".join(lines)
    raw = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    resp = Response(_serve(_split(raw, cuts)))
    got = []
    while line := resp.readline():
        got.append(line)
    assert got == lines


def test_empty_statuses() -> None:
    resp = Response(_serve([b"HTTP/1.1 204 No Content\r\n\r\n"]))
    assert resp.status == 204 and resp.read() == b""


@settings(deadline=None, max_examples=60)
@given(st.lists(st.tuples(st.sampled_from([1, 2]), st.binary(max_size=100)), max_size=8),
       st.lists(st.integers(0, 2000), max_size=10))
def test_demux_any_split(frames: list[tuple[int, bytes]], cuts: list[int]) -> None:
    raw = b"".join(frame(s, d) for s, d in frames)
    pieces = _split(raw, cuts)
    out, err = io.BytesIO(), io.BytesIO()
    first = pieces[0] if pieces else b""
    demux(_serve(pieces[1:]), first, False, out, err)
    assert out.getvalue() == b"".join(d for s, d in frames if s == 1)
    assert err.getvalue() == b"".join(d for s, d in frames if s == 2)
