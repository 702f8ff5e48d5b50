"""Log lines of several containers: whole lines, each with its container's prefix."""

from __future__ import annotations

import io
import threading

from portside.compose.logs import _Lines


def test_lines_are_prefixed_and_never_split() -> None:
    out = io.BytesIO()
    lines = _Lines(b"web-1  | ", out, threading.Lock())
    lines.write(b"hel")
    assert out.getvalue() == b""
    lines.write(b"lo\nwor")
    lines.write(b"ld\nlast")
    lines.close()
    assert out.getvalue() == b"web-1  | hello\nweb-1  | world\nweb-1  | last\n"
