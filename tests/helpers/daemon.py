"""A portside daemon for a test: its own root and socket, stopped and cleaned up after.

`PortsideDaemon.cli(...)` runs the real `portside` command against it (a subprocess, as a
user would), `docker(...)` the real docker client. `stop()`/`start()` restart the daemon
with the same root (for live-restore tests). At the end every container is force-removed
through the API, the daemon is stopped, and anything the runtime still holds is deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from helpers.processes import stop_process

from portside.client.transport import socket_answers


class PortsideDaemon:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.sockdir = Path(tempfile.mkdtemp(prefix="ps-", dir="/tmp"))
        self.socket = self.sockdir / "d.sock"
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = {**os.environ, "PORTSIDE_ROOT": str(root), "PORTSIDE_SOCKET": str(self.socket)}
        self.env.pop("DOCKER_HOST", None)

    def _reachable(self) -> bool:
        return socket_answers(self.socket)

    def start(self) -> None:
        log = open(self.root / "daemon-test.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "portside", "daemon", "--socket", str(self.socket)],
            env=self.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 30
        while not self._reachable():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("daemon did not start:\n" + self.log())
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        self.proc = None

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "daemon-test.log").read_text()
        return ""

    def cli(self, *args: str, input: bytes | str | None = None, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        data = input.decode() if isinstance(input, bytes) else input
        r = subprocess.run([sys.executable, "-m", "portside", *args], env=self.env, text=True,
                           input=data, capture_output=True, timeout=timeout,
                           stdin=None if data is not None else subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise AssertionError(f"portside {' '.join(args)} -> {r.returncode}\n"
                                 f"stdout: {r.stdout}\nstderr: {r.stderr}")
        return r

    def docker_env(self, **extra: str) -> dict[str, str]:
        """The environment of a `docker` client of this daemon: the test's DOCKER_* variables
        dropped, a configuration directory of its own, and `extra`."""
        env = {k: v for k, v in self.env.items() if not k.startswith("DOCKER_")}
        env["DOCKER_CONFIG"] = str(self.sockdir / "docker-config")
        env.update(extra)
        return env

    def docker_argv(self, *args: str) -> list[str]:
        """`docker *args` against this daemon's socket (run with `docker_env`)."""
        return ["docker", "-H", f"unix://{self.socket}", *args]

    def docker(self, *args: str, check: bool = True, timeout: float = 120,
               input: str | None = None) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(self.docker_argv(*args), env=self.docker_env(),
                           text=True, capture_output=True, timeout=timeout, input=input,
                           stdin=None if input is not None else subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} -> {r.returncode}\n"
                                 f"stdout: {r.stdout}\nstderr: {r.stderr}")
        return r

    def inspect(self, name: str) -> dict[str, Any]:
        doc: list[dict[str, Any]] = json.loads(self.cli("inspect", name).stdout)
        return doc[0]

    def wait_for(self, predicate: Any, timeout: float = 30, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n" + self.log()[-3000:])
            time.sleep(0.1)

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(Exception):
                ids = self.cli("ps", "-aq", "--no-trunc", check=False, timeout=30).stdout.split()
                if ids:
                    self.cli("rm", "-f", "-v", *ids, check=False, timeout=120)
        self.stop()
        from portside.runtime import Runtime

        rt_root = self.root / "runtime"
        if rt_root.exists():
            rt = Runtime(rt_root)
            for cid in rt.list():
                with contextlib.suppress(Exception):
                    rt.delete(cid, force=True)
            with contextlib.suppress(Exception):
                rt.close()  # type: ignore[attr-defined]
        if (self.root / "network").exists():
            from portside.engine.networking import Networking

            net = Networking(self.root)
            with contextlib.suppress(Exception):
                net.manager.purge()  # endpoints, the bridge, firewall rules, dns
            net.close()
        shutil.rmtree(self.sockdir, ignore_errors=True)


def stop_autostarted(under: Path) -> None:
    """Stop the daemons the CLI auto-started for roots under `under` (what a test's
    `portside images`, `pull`, `load`... left running)."""
    import os
    import signal
    import subprocess
    import time

    found = subprocess.run(["pgrep", "-f", f"portside daemon --socket {under}/"],
                           capture_output=True, text=True)
    pids = [int(p) for p in found.stdout.split()]
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
