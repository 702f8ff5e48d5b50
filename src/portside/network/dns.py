"""Name resolution on user-defined networks: one dnsmasq per portside root.

dnsmasq (Debian `dnsmasq-base`) listens on the gateway address of every user-defined
bridge of this root (`--interface=<bridge prefix>*` with `--bind-dynamic`, so bridges that
come and go need no restart). It answers the containers' names (container name,
`--network-alias`, hostname, short id) from one hosts file that we rewrite on every
attach/detach and reload with SIGHUP (which also clears its cache, so a removed container
stops resolving at once); it forwards every other name to the host's resolvers
(/etc/resolv.conf). `--localise-queries` answers a name with the address on the network
the query came from, so two projects may each have their `db`, and a container on two
networks resolves the names of both. Control plane only: no container traffic but DNS
queries goes through it. A container started with `--dns` gets a dnsmasq of its own instead,
which forwards to those servers (`resolver.py`); both are `Dnsmasq`s.

Why not aardvark-dns: the 1.4 release in Debian 12 tears its listening sockets down on
every reload, losing queries for seconds after any container starts or stops (fixed
upstream in aardvark-dns 1.11, containers/aardvark-dns#449).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from portside.network.errors import NetworkSetupFailed
from portside.network.store import Attachment


def dns_names(att: Attachment) -> list[str]:
    """The names an endpoint answers to, Docker's set: name, aliases, hostname, short id."""
    names = [att.container_name, *att.aliases, att.hostname, att.container_id[:12]]
    return list(dict.fromkeys(n for n in names if n))


class Dnsmasq:
    """One dnsmasq answering the names of a hosts file we write; its files (hosts, pid,
    log) live under `directory`. Subclasses say where it listens and where it forwards."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _common_args(self) -> list[str]:
        d = self.dir
        return [shutil.which("dnsmasq") or "/usr/sbin/dnsmasq", "--conf-file=/dev/null",
                "--no-hosts", f"--addn-hosts={d / 'hosts'}", f"--pid-file={d / 'pid'}",
                "--port=53", "--user=root", "--group=root", f"--log-facility={d / 'log'}",
                "--no-negcache", "--local-ttl=0"]

    def serve(self, lines: list[str]) -> None:
        """Answer exactly these hosts-file lines: reload the running server (when they
        changed) or start one."""
        self.dir.mkdir(parents=True, exist_ok=True)
        hosts = self.dir / "hosts"
        text = "\n".join(lines) + "\n"
        pid = self.pid()
        if pid:
            try:
                if hosts.read_text() == text:
                    return
            except OSError:
                pass
        tmp = self.dir / "hosts.tmp"
        tmp.write_text(text)
        os.replace(tmp, hosts)
        if pid:
            self._reload(pid)
        else:
            self._start()

    def _reload(self, pid: int, timeout: float = 2.0) -> None:
        """SIGHUP, then wait until dnsmasq logs that it re-read the hosts file, so a name
        removed here no longer resolves when this returns."""
        log = self.dir / "log"
        try:
            offset = log.stat().st_size
        except OSError:
            offset = 0
        os.kill(pid, signal.SIGHUP)
        marker = f"read {self.dir / 'hosts'}".encode()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(log, "rb") as f:
                    f.seek(offset)
                    if marker in f.read():
                        return
            except OSError:
                return
            time.sleep(0.002)

    def _start(self) -> None:
        # dnsmasq binds its sockets and reads the hosts file before it daemonizes, so it
        # answers as soon as this returns
        res = subprocess.run(self._argv(), capture_output=True, text=True)
        if res.returncode != 0:
            raise self._failed(res.stderr or "dnsmasq failed")

    def _failed(self, message: str) -> NetworkSetupFailed:
        return NetworkSetupFailed("start DNS for", "user-defined", message)

    def pid(self) -> int | None:
        """The running dnsmasq, checked against its command line."""
        try:
            pid = int((self.dir / "pid").read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        if f"--pid-file={self.dir / 'pid'}".encode() not in cmdline or not _alive(pid):
            return None
        return pid

    def stop(self) -> None:
        """Stop the server and wait until it is gone (its sockets released, its network
        namespace no longer held); remove its files."""
        pid = self.pid()
        if pid:
            os.kill(pid, signal.SIGTERM)
            for _ in range(400):
                if not _alive(pid):
                    break
                time.sleep(0.005)
        shutil.rmtree(self.dir, ignore_errors=True)

    def running(self) -> list[int]:
        """[pid] while the server runs (for clean-up checks)."""
        pid = self.pid()
        return [pid] if pid else []


class DnsServer(Dnsmasq):
    """The shared dnsmasq of one portside root, on the gateways of its bridges."""

    def __init__(self, directory: Path, bridge_prefix: str) -> None:
        super().__init__(directory)
        self.bridge_prefix = bridge_prefix

    def sync(self, endpoints: Iterable[Attachment], extra: Iterable[str] = ()) -> None:
        """Answer exactly these endpoints' names and the `extra` hosts-file lines (the
        services'); nothing at all: stop the server."""
        lines = [f"{a.ip}\t{' '.join(dns_names(a))}" for a in endpoints]
        lines += extra
        if not lines:
            self.stop()
            return
        self.serve(lines)

    def _argv(self) -> list[str]:
        return [*self._common_args(), f"--interface={self.bridge_prefix}*", "--bind-dynamic",
                "--except-interface=lo",  # --interface alone would add loopback
                "--localise-queries", "--domain-needed"]

    def wait_listening(self, address: str, timeout: float = 2.0) -> bool:
        """Wait until the server has bound `address`:53 (it binds a new bridge's address
        when the kernel announces it, a moment after the bridge appears)."""
        import ipaddress

        want = f"{int.from_bytes(ipaddress.IPv4Address(address).packed, 'little'):08X}:0035"
        deadline = time.monotonic() + timeout
        while True:
            try:
                table = Path("/proc/net/udp").read_text()
            except OSError:
                return False
            if any(line.split()[1] == want for line in table.splitlines()[1:]):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)


def _alive(pid: int) -> bool:
    """Running, not a zombie (a daemonized dnsmasq is reaped by whoever adopted it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
