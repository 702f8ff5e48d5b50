"""The client side of attach/exec streams: stdin up, output down, a real TTY when asked.

With a TTY and a terminal on our stdin, the terminal goes to raw mode for the session
and window size changes (SIGWINCH) are sent to the daemon. Ctrl-P Ctrl-Q detaches, as in
Docker. Output of a non-TTY stream is demultiplexed to our stdout and stderr.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator

from portside.cli.client import demux

TYPE_CHECKING = False  # typing costs milliseconds to import on `run`'s hot path
if TYPE_CHECKING:
    from typing import Any

DETACH = b"\x10\x11"  # ctrl-p ctrl-q


def terminal_size() -> tuple[int, int] | None:
    for fd in (sys.stdout.fileno(), sys.stdin.fileno()):
        with contextlib.suppress(OSError):
            size = os.get_terminal_size(fd)
            return size.lines, size.columns
    return None


@contextlib.contextmanager
def raw_terminal(enabled: bool) -> Iterator[None]:
    if not enabled or not sys.stdin.isatty():
        yield
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


class Session:
    """One attached stream; `run()` returns when the output ends (or on detach)."""

    def __init__(self, sock: socket.socket, first: bytes, tty: bool, stdin: bool,
                 resize: Callable[[int, int], None] | None = None) -> None:
        self.sock = sock
        self.first = first
        self.tty = tty
        self.stdin = stdin
        self.resize = resize
        self.detached = False

    def _pump_stdin(self) -> None:
        fd = sys.stdin.fileno()
        prev = b""
        try:
            while True:
                data = os.read(fd, 65536)
                if not data:
                    break
                if self.tty and DETACH in prev[-1:] + data:
                    self.detached = True
                    with contextlib.suppress(OSError):
                        self.sock.shutdown(socket.SHUT_RDWR)
                    return
                prev = data
                self.sock.sendall(data)
        except OSError:
            return
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    def run(self) -> None:
        out = sys.stdout.buffer
        err = sys.stderr.buffer
        old_winch: Any = None
        if self.tty and self.resize is not None:
            size = terminal_size()
            if size:
                with contextlib.suppress(Exception):
                    self.resize(*size)

            def on_winch(_sig: int, _frame: Any) -> None:
                size = terminal_size()
                if size and self.resize is not None:
                    with contextlib.suppress(Exception):
                        self.resize(*size)

            if threading.current_thread() is threading.main_thread():
                old_winch = signal.signal(signal.SIGWINCH, on_winch)
        if self.stdin:
            threading.Thread(target=self._pump_stdin, daemon=True).start()
        try:
            with raw_terminal(self.tty and self.stdin):
                demux(self.sock, self.first, self.tty, out, err)
        finally:
            if old_winch is not None:
                signal.signal(signal.SIGWINCH, old_winch)
            self.sock.close()
