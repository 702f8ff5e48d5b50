"""The Docker Engine API's multiplexed stdout/stderr stream (attach, logs, exec).

Each frame is an 8-byte header (stream type: 0 stdin, 1 stdout, 2 stderr; three zero
bytes; a big-endian uint32 length) and the data; with a TTY the stream is raw bytes. The
daemon writes frames (`frame`), every client of the API (the CLI, compose) reads them
(`demux`), so the format lives here, below both. It is on the hot path of an attached
`portside run`, so it imports nothing.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs milliseconds to import on `run`'s hot path
if TYPE_CHECKING:
    from typing import Any


def frame(stream: int, data: bytes) -> bytes:
    return bytes((stream, 0, 0, 0)) + len(data).to_bytes(4, "big") + data


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
