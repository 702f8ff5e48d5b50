"""A process started in a running container with `crun/runc exec`, and its PTY if any.

Without a TTY the exec'd process inherits the runtime's stdio pipes directly. With a TTY
the runtime creates the pseudo-terminal inside the container and hands its master end
over a unix socket (`--console-socket`) as SCM_RIGHTS ancillary data; `ConsoleSocket`
receives it.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import termios
from pathlib import Path
from typing import IO


class ConsoleSocket:
    """A listening unix socket in a short private directory (sun_path is 108 bytes)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="portside-tty-", dir="/tmp"))
        self.path = self.dir / "c.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(self.path))
        self.sock.listen(1)

    def receive(self, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int | None:
        """Wait for the runtime to send the PTY master; None if the runtime exited first."""
        pidfd = os.pidfd_open(proc.pid)
        try:
            ready, _, _ = select.select([self.sock.fileno(), pidfd], [], [], timeout)
            if self.sock.fileno() not in ready:
                return None
            conn, _ = self.sock.accept()
            with conn:
                fds = array.array("i")
                _, anc, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
                for level, kind, data in anc:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
                return fds[0] if fds else None
        finally:
            os.close(pidfd)

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def set_winsize(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class ExecProcess:
    """Handle on an exec'd process: pipes (stdin/stdout/stderr) or `pty` (master fd)."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        pty: int | None = None,
        pid_file: Path | None = None,
        cleanup: list[Path] | None = None,
        winch: bool = False,
    ) -> None:
        self._proc = proc
        self.pty = pty
        self._pid_file = pid_file
        self._cleanup = cleanup or []
        self.exit_code: int | None = None
        self._winch = winch  # the runtime proxies the PTY: tell it about new sizes

    @property
    def stdin(self) -> IO[bytes] | None:
        return self._proc.stdin

    @property
    def stdout(self) -> IO[bytes] | None:
        return self._proc.stdout

    @property
    def stderr(self) -> IO[bytes] | None:
        return self._proc.stderr

    @property
    def pid(self) -> int:
        """The exec'd process's host pid (0 until the runtime wrote it)."""
        if self._pid_file is not None:
            with contextlib.suppress(OSError, ValueError):
                return int(self._pid_file.read_text().strip() or 0)
        return 0

    @property
    def runtime_pid(self) -> int:
        """The `crun/runc exec` process that waits for the exec'd one; poll its exit."""
        return self._proc.pid

    def poll(self) -> int | None:
        rc = self._proc.poll()
        if rc is not None:
            self._finish(rc)
        return self.exit_code if rc is not None else None

    def wait(self, timeout: float | None = None) -> int:
        """Exit code of the process (raises subprocess.TimeoutExpired on timeout)."""
        if timeout is not None and self._proc.returncode is None:
            # Popen's timed wait polls with sleeps; a pidfd wakes us when it exits.
            try:
                fd = os.pidfd_open(self._proc.pid)
            except ProcessLookupError:
                fd = -1
            if fd >= 0:
                try:
                    if not select.select([fd], [], [], timeout)[0]:
                        raise subprocess.TimeoutExpired(self._proc.args, timeout)
                finally:
                    os.close(fd)
        rc = self._proc.wait()
        self._finish(rc)
        assert self.exit_code is not None
        return self.exit_code

    def _finish(self, rc: int) -> None:
        if self.exit_code is None:
            # Killed by a signal: report 128+N like a shell (and Docker).
            self.exit_code = 128 - rc if rc < 0 else rc
            for p in self._cleanup:
                with contextlib.suppress(OSError):
                    p.unlink()

    def resize(self, rows: int, cols: int) -> None:
        if self.pty is not None:
            set_winsize(self.pty, rows, cols)
            if self._winch and self._proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._proc.pid, signal.SIGWINCH)

    def kill(self, sig: int) -> None:
        pid = self.pid
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def close(self) -> None:
        """Release our ends (pipes, PTY master); the process itself is not killed."""
        for f in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        if self.pty is not None:
            with contextlib.suppress(OSError):
                os.close(self.pty)
            self.pty = None
