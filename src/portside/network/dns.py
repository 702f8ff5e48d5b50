"""Name resolution on user-defined networks: one dnsmasq per network, on its gateway.

dnsmasq (Debian `dnsmasq-base`) answers the names of the network's containers (container
name, `--network-alias`, hostname, short id) from a hosts file we rewrite on every
attach/detach and reload with SIGHUP (which also clears its cache, so a removed container
stops resolving at once), and forwards every other name to the host's resolvers
(/etc/resolv.conf), except on `--internal` networks. It is started with the network's
first endpoint and stopped with its last. Control plane only: no container traffic but
DNS queries goes through it.

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
from portside.network.store import Attachment, Network


def dns_names(att: Attachment) -> list[str]:
    """The names an endpoint answers to, Docker's set: name, aliases, hostname, short id."""
    names = [att.container_name, *att.aliases, att.hostname, att.container_id[:12]]
    return list(dict.fromkeys(n for n in names if n))


class DnsServers:
    """The dnsmasq instances of one portside root, one directory each under `base`."""

    def __init__(self, base: Path) -> None:
        self.base = base

    def _dir(self, net: Network) -> Path:
        return self.base / net.id[:16]

    def sync(self, net: Network, endpoints: Iterable[Attachment]) -> None:
        """Make the network's server answer exactly these endpoints (none: stop it)."""
        lines = [f"{a.ip}\t{' '.join(dns_names(a))}" for a in endpoints]
        if not lines:
            self.stop(net)
            return
        d = self._dir(net)
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / "hosts.tmp"
        tmp.write_text("\n".join(lines) + "\n")
        os.replace(tmp, d / "hosts")
        pid = self.pid(net)
        if pid:
            os.kill(pid, signal.SIGHUP)
        else:
            self._start(net, d)

    def _start(self, net: Network, d: Path) -> None:
        binary = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
        args = [
            binary, "--conf-file=/dev/null", "--no-hosts", f"--addn-hosts={d / 'hosts'}",
            f"--pid-file={d / 'pid'}", f"--listen-address={net.gateway}", "--bind-interfaces",
            "--port=53", "--user=root", "--group=root", f"--log-facility={d / 'log'}",
            "--domain-needed", "--no-negcache", "--local-ttl=0",
        ]
        if net.internal:
            args.append("--no-resolv")  # no names from outside, as Docker's internal networks
        res = subprocess.run(args, capture_output=True, text=True)
        if res.returncode != 0:
            raise NetworkSetupFailed("start DNS for", net.name, res.stderr or "dnsmasq failed")

    def pid(self, net: Network) -> int | None:
        """The running dnsmasq of this network, checked against its command line."""
        d = self._dir(net)
        try:
            pid = int((d / "pid").read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        if f"--pid-file={d / 'pid'}".encode() not in cmdline or not _alive(pid):
            return None
        return pid

    def stop(self, net: Network) -> None:
        """Stop the server and wait until its socket is released; remove its files."""
        pid = self.pid(net)
        if pid:
            os.kill(pid, signal.SIGTERM)
            for _ in range(400):
                if not _alive(pid):
                    break
                time.sleep(0.005)
        shutil.rmtree(self._dir(net), ignore_errors=True)

    def running(self) -> list[int]:
        """Pids of every server of this root (for clean-up checks)."""
        out = []
        if self.base.is_dir():
            for d in self.base.iterdir():
                try:
                    pid = int((d / "pid").read_text().strip())
                except (OSError, ValueError):
                    continue
                if _alive(pid):
                    out.append(pid)
        return out


def _alive(pid: int) -> bool:
    """Running, not a zombie (a daemonized dnsmasq is reaped by whoever adopted it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
