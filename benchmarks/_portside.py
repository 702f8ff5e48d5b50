"""portside as the benchmarks drive it: a daemon on a private root and socket, and the
`portside` command, run as a user runs it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import NotAvailable
from portside.client.transport import socket_answers


class Portside:
    """A daemon on a private root, driven through the `portside` command."""

    def __init__(self, work: Path) -> None:
        self.root = work / "root"
        self.socket = work / "d.sock"
        self.exe = str(Path(sys.executable).with_name("portside"))
        self.env = {**os.environ, "PORTSIDE_ROOT": str(self.root),
                    "PORTSIDE_SOCKET": str(self.socket)}
        # As a user runs it: with Python's bytecode cache (a session may turn it off,
        # which recompiles the CLI's modules on every command, ~10 ms).
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.proc: subprocess.Popen[bytes] | None = None

    def __call__(self, *args: str) -> str:
        r = subprocess.run([self.exe, *args], env=self.env, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise NotAvailable(f"portside {args[0]} failed: {r.stderr.strip()[-160:]}")
        return r.stdout

    def start(self) -> None:
        self("image", "bootstrap", "busybox")
        log = open(self.root / "daemon.log", "ab")  # noqa: SIM115 - the daemon's
        self.proc = subprocess.Popen([self.exe, "daemon", "--socket", str(self.socket)],
                                     env=self.env, stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 30
        while not socket_answers(self.socket):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise NotAvailable("the portside daemon did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            ids = self("ps", "-aq", "--no-trunc").split()
            if ids:
                self("rm", "-f", *ids)
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if (self.root / "network").exists():
            from portside.engine.networking import Networking

            net = Networking(self.root)
            with contextlib.suppress(Exception):
                net.manager.purge()
            net.close()
