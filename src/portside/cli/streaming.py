"""The client side of attach/exec streams: stdin up, output down, a real TTY when asked.

With a TTY and a terminal on our stdin, the terminal goes to raw mode for the session
and window size changes (SIGWINCH) are sent to the daemon. Ctrl-P Ctrl-Q detaches, as in
Docker. Output of a non-TTY stream is demultiplexed to our stdout and stderr.
"""

from __future__ import annotations

import os
import sys
from _socket import SHUT_RDWR, SHUT_WR

from portside.client.transport import demux

# On `run`'s hot path: typing, contextlib, signal and threading cost milliseconds to
# import, and only a TTY or an open stdin needs the last two.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from portside.engine.interface import Stream

DETACH = b"\x10\x11"  # ctrl-p ctrl-q


def terminal_size() -> tuple[int, int] | None:
    for fd in (sys.stdout.fileno(), sys.stdin.fileno()):
        try:
            size = os.get_terminal_size(fd)
        except OSError:
            continue
        return size.lines, size.columns
    return None


def raw_mode() -> Callable[[], None] | None:
    """Put the terminal on our stdin in raw mode; the function that restores it (None when
    stdin is not a terminal)."""
    if not sys.stdin.isatty():
        return None
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    return lambda: termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _shutdown(sock: Stream, how: int) -> None:
    try:
        sock.shutdown(how)
    except OSError:
        pass


class Session:
    """One attached stream; `run()` returns when the output ends (or on detach)."""

    def __init__(self, sock: Stream, first: bytes, tty: bool, stdin: bool,
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
                    _shutdown(self.sock, SHUT_RDWR)
                    return
                prev = data
                self.sock.sendall(data)
        except OSError:
            return
        _shutdown(self.sock, SHUT_WR)

    def run(self) -> None:
        out = sys.stdout.buffer
        err = sys.stderr.buffer
        old_winch: Any = None
        if self.tty and self.resize is not None:
            old_winch = self._follow_window_size()
        if self.stdin:
            import threading

            threading.Thread(target=self._pump_stdin, daemon=True).start()
        restore = raw_mode() if self.tty and self.stdin else None
        try:
            demux(self.sock, self.first, self.tty, out, err)
        finally:
            if restore is not None:
                restore()
            if old_winch is not None:
                import signal

                signal.signal(signal.SIGWINCH, old_winch)
            self.sock.close()

    def _follow_window_size(self) -> Any:
        """Send our terminal's size now and on every SIGWINCH; the previous handler."""
        import signal
        import threading

        def send() -> None:
            size = terminal_size()
            if size and self.resize is not None:
                try:
                    self.resize(*size)
                except Exception:  # noqa: BLE001 - a resize is best effort
                    pass

        send()
        if threading.current_thread() is not threading.main_thread():
            return None
        return signal.signal(signal.SIGWINCH, lambda _sig, _frame: send())
