"""`run -it` and `exec -it` with a real pseudo-terminal on the client side: raw mode,
the terminal's size passed to the container, exit status passed back; daemon auto-start."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import sys
import termios
import time

from helpers.daemon import PortsideDaemon


def _run_in_pty(daemon: PortsideDaemon, args: list[str], script: list[bytes],
                rows: int = 33, cols: int = 77) -> tuple[int, bytes]:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "portside", *args], env=daemon.env,
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    out = bytearray()
    pending = list(script)
    deadline = time.monotonic() + 60
    last_send = 0.0
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            elif pending and time.monotonic() - last_send > 0.5 and b"#" in out:
                os.write(master, pending.pop(0))
                last_send = time.monotonic()
            if proc.poll() is not None and not ready:
                break
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, bytes(out)


def test_run_it_has_a_terminal_of_the_clients_size(daemon: PortsideDaemon) -> None:
    code, out = _run_in_pty(daemon, ["run", "-it", "--rm", "busybox", "sh"],
                            [b"stty size; tty; echo $((6*7))\r", b"exit 3\r"])
    assert code == 3, out
    assert b"33 77" in out
    assert b"/dev/pts/" in out
    assert b"42" in out
    assert daemon.cli("ps", "-aq").stdout == ""


def test_exec_it_into_a_running_container(daemon: PortsideDaemon) -> None:
    daemon.cli("run", "-d", "--name", "box", "busybox", "sleep", "300")
    code, out = _run_in_pty(daemon, ["exec", "-it", "box", "sh"],
                            [b"stty size; echo in-$((1+1))\r", b"exit 5\r"], rows=20, cols=50)
    assert code == 5, out
    assert b"20 50" in out and b"in-2" in out


def test_cli_starts_the_daemon_when_absent(root, store) -> None:  # type: ignore[no-untyped-def]
    from helpers.busybox import busybox_image

    busybox_image(store)
    d = PortsideDaemon(root)  # not started: the first command starts it
    try:
        r = d.cli("run", "--rm", "busybox", "echo", "auto")
        assert r.stdout == "auto\n"
        assert d.socket.exists() and (root / "daemon.log").exists()
        pid = int((root / "daemon.pid").read_text())
    finally:
        with_pid = (root / "daemon.pid")
        if with_pid.exists():
            os.kill(int(with_pid.read_text()), 15)
            deadline = time.monotonic() + 30
            while with_pid.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
        d.cleanup()
    assert pid > 0
