"""Docker's embedded DNS for containers with `--dns` on user-defined networks.

In Docker a container on a user-defined network gets `nameserver 127.0.0.11`: the embedded
DNS answers the names of the container's networks and forwards every other name to the
container's `--dns` servers (the host's resolvers without them). The shared dnsmasq of the
root (dns.py) forwards to the host's resolvers and cannot choose upstream servers per
client, so a container that is on at least one DNS-enabled network and has `--dns` servers
gets a dnsmasq of its own: started in the container's network namespace (`nsenter --net`),
listening on 127.0.0.11:53 only (loopback: no other container can reach it), forwarding
to exactly those servers (`--no-resolv --server=...`), and answering the names of only the
networks this container is attached to. Its hosts file is rewritten, and the server
reloaded, in the same step that reloads the shared server (every attach and detach of the
root), so a connect, a disconnect or a removal elsewhere shows at once. Containers without
`--dns` keep the shared server and cost no process.

Files, under `<root>/network/resolvers/`: `<id>.json`, what a running container asked for
(`--dns`, `--dns-search`, `--dns-option`), and `<id>/`, the hosts file, pid file and log of
its dnsmasq while one runs. The server is stopped before the container's namespace is
released, so it never keeps a namespace alive. After a daemon restart it is found again by
its pid file (checked against its command line and its namespace) or started again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from portside.network.dns import Dnsmasq, dns_names
from portside.network.errors import NetworkSetupFailed
from portside.network.store import Attachment

RESOLVER_ADDRESS = "127.0.0.11"  # Docker's embedded DNS address


@dataclass(frozen=True)
class DnsSettings:
    """A container's `--dns`, `--dns-search` and `--dns-option` (HostConfig.Dns*)."""

    servers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.servers or self.search or self.options)


class ContainerDns(Dnsmasq):
    """The dnsmasq of one container, in its network namespace on 127.0.0.11:53."""

    def __init__(self, directory: Path, netns: str = "", upstream: Sequence[str] = (),
                 network: str = "") -> None:
        super().__init__(directory)
        self.netns = netns
        self.upstream = list(upstream)
        self.network = network

    def _argv(self) -> list[str]:
        # --strict-order: the --dns servers in the order given, as a resolver reads them
        return ["nsenter", f"--net={self.netns}", *self._common_args(), "--no-resolv",
                "--strict-order", *[f"--server={s}" for s in self.upstream],
                f"--listen-address={RESOLVER_ADDRESS}", "--bind-interfaces"]

    def _failed(self, message: str) -> NetworkSetupFailed:
        return NetworkSetupFailed(f"start the DNS server of container {self.dir.name[:12]} on",
                                  self.network, message)

    def in_netns(self, pid: int) -> bool:
        """Whether the process `pid` lives in this server's namespace."""
        try:
            mine, want = os.stat(f"/proc/{pid}/ns/net"), os.stat(self.netns)
        except OSError:
            return False
        return (mine.st_dev, mine.st_ino) == (want.st_dev, want.st_ino)


def private_hosts(own: Sequence[Attachment], attachments: Iterable[Attachment]) -> list[str]:
    """Hosts-file lines for a container's server: the endpoints of the DNS networks it is on
    (`own`, in its order); a name on several of them is answered on the first (Docker's
    embedded DNS looks names up network by network, in the container's order)."""
    everyone = list(attachments)
    seen: set[str] = set()
    lines = []
    for mine in own:
        found: set[str] = set()
        for a in everyone:
            if a.network_id != mine.network_id:
                continue
            names = [n for n in dns_names(a) if n.lower() not in seen]
            found.update(n.lower() for n in names)
            if names:
                lines.append(f"{a.ip}\t{' '.join(names)}")
        seen |= found
    return lines


class ContainerResolvers:
    """The private DNS servers of one root's containers (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def configure(self, container_id: str, settings: DnsSettings) -> None:
        """Record what a starting container asked for; nothing for a container without."""
        if not settings:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f"{container_id}.json.tmp"
        tmp.write_text(json.dumps({"Dns": list(settings.servers),
                                   "DnsSearch": list(settings.search),
                                   "DnsOptions": list(settings.options)}))
        os.replace(tmp, self.dir / f"{container_id}.json")

    def settings(self, container_id: str) -> DnsSettings:
        try:
            doc = json.loads((self.dir / f"{container_id}.json").read_text())
        except (OSError, ValueError):
            return DnsSettings()
        return DnsSettings(tuple(doc.get("Dns") or ()), tuple(doc.get("DnsSearch") or ()),
                           tuple(doc.get("DnsOptions") or ()))

    def sync(self, attachments: Sequence[Attachment], strict: str | None = None) -> None:
        """Give every configured container that has `--dns` servers and a DNS network a
        server answering exactly its networks' names; stop the servers of the others.

        A failure to start is raised for the container `strict` (the one being attached)
        and ignored for the others (they are retried at the next sync)."""
        if not self.dir.is_dir():
            return
        for path in sorted(self.dir.glob("*.json")):
            cid = path.name.removesuffix(".json")
            try:
                self._sync_one(cid, attachments)
            except NetworkSetupFailed:
                if cid == strict:
                    raise

    def _sync_one(self, cid: str, attachments: Sequence[Attachment]) -> None:
        upstream = self.settings(cid).servers
        own = [a for a in attachments if a.container_id == cid and a.dns_servers]
        if not upstream or not own or not Path(own[0].netns).exists():
            ContainerDns(self.dir / cid).stop()
            return
        server = ContainerDns(self.dir / cid, own[0].netns, upstream, own[0].network)
        pid = server.pid()
        if pid and not server.in_netns(pid):  # a namespace made anew since it started
            server.stop()
        server.serve(private_hosts(own, attachments))

    def forget(self, container_id: str) -> None:
        """Stop a container's server (waiting until it is gone) and drop its files."""
        if not self.dir.is_dir():
            return
        (self.dir / f"{container_id}.json").unlink(missing_ok=True)
        ContainerDns(self.dir / container_id).stop()

    def has(self, container_id: str) -> bool:
        """Whether a container has a record or server files here."""
        return ((self.dir / f"{container_id}.json").exists()
                or (self.dir / container_id).exists())

    def containers(self) -> set[str]:
        """Containers with a record or server files here."""
        if not self.dir.is_dir():
            return set()
        return {p.name.removesuffix(".json") for p in self.dir.iterdir()
                if p.suffix == ".json" or p.is_dir()}

    def stop_all(self) -> None:
        for cid in self.containers():
            self.forget(cid)
        with contextlib.suppress(OSError):
            shutil.rmtree(self.dir)

    def running(self) -> list[int]:
        """Pids of the servers that run (for clean-up checks)."""
        if not self.dir.is_dir():
            return []
        return [pid for p in sorted(self.dir.iterdir()) if p.is_dir()
                for pid in ContainerDns(p).running()]
