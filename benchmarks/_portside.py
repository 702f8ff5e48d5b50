"""portside as the benchmarks drive it: a daemon on a private root and socket, and the
`portside` command, run as a user runs it."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks import NotAvailable
from benchmarks._docker import DockerClient
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

    def start(self, busybox: bool = True) -> None:
        """The daemon, then (through it: image work goes to the daemon) a busybox image."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
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
        if busybox:
            self("image", "bootstrap", "busybox")

    def docker_env(self, config_dir: Path) -> dict[str, str]:
        """The environment in which a `docker` client talks to this daemon (its own client
        configuration directory, so no credential or context of the host's leaks in)."""
        config_dir.mkdir(parents=True, exist_ok=True)
        return {**os.environ, "DOCKER_HOST": f"unix://{self.socket}",
                "DOCKER_CONFIG": str(config_dir)}

    def docker_client(self, config_dir: Path) -> DockerClient:
        """The `docker` client first on PATH, talking to this daemon (see `docker_env`)."""
        client = shutil.which("docker")
        if client is None:
            raise NotAvailable("no docker client on PATH")
        return DockerClient(client, self.docker_env(config_dir), "portside")

    def probe(self, method: str, path: str) -> tuple[int, str]:
        """Send `method path` with an empty body, as an outside client would; returns the
        status and the JSON error body's message ("" when there is none)."""
        conn = _UnixHTTPConnection(str(self.socket))
        try:
            conn.request(method, path, body=b"", headers={"Content-Type": "application/x-tar"})
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        try:
            message = json.loads(raw).get("message") or ""
        except (ValueError, AttributeError):
            message = ""
        return response.status, str(message)

    def unserved(self, method: str, path: str) -> bool:
        """Whether no handler of the daemon takes `method path` (probed with an empty body).

        A path no route matches gets the HTTP router's own answer, 404 (or 405 when a route
        of another method matches the path), whose message is the bare HTTP reason; a
        handler's 404 says what is missing ("No such image: ..."). So the probe may use
        harmless arguments: a handler that exists fails on them, a missing one never runs.
        """
        status, message = self.probe(method, path)
        return status in (404, 405) and message in ("Not Found", "Method Not Allowed")

    def stop(self) -> None:
        if self.proc is None:
            return  # never started (a command here would start a daemon of its own)
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
            self.proc = None
        if (self.root / "network").exists():
            from portside.engine.networking import Networking

            net = Networking(self.root)
            with contextlib.suppress(Exception):
                net.manager.purge()
            net.close()


@contextlib.contextmanager
def running(work: Path) -> Iterator[Portside]:
    """A daemon started in `work` (made here, so new); stopped after, its mounts undone."""
    ps = Portside(work)
    try:
        work.mkdir()
        ps.start()
        yield ps
    finally:
        ps.stop()
        subprocess.run(["umount", "-R", str(work)], capture_output=True, check=False)


class _UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over the daemon's unix socket, as an outside client reaches it."""

    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=60)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock
