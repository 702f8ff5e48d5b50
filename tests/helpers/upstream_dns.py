"""An outside DNS server for tests of `--dns`: a host dnsmasq on an address of its own.

It listens on 10.213.250.<n> of a veth pair made for the test, in the host's namespace
(containers reach it through their gateway, as they would a resolver of the LAN; the
`dummy` link type is not in every kernel) and answers only the names it
is given (`--address=/name/ip`); every other name gets NXDOMAIN (`--address=/#/`), never
forwarded. The link
and the process go when the context ends.
"""

from __future__ import annotations

import contextlib
import ipaddress
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path


def _bound(address: str) -> bool:
    want = f"{int.from_bytes(ipaddress.IPv4Address(address).packed, 'little'):08X}:0035"
    return any(line.split()[1] == want
               for line in Path("/proc/net/udp").read_text().splitlines()[1:])


@contextlib.contextmanager
def upstream_dns(answers: dict[str, str]) -> Iterator[str]:
    """Yield the address of a DNS server answering `answers` ({name: IPv4})."""
    link = f"psdns{secrets.token_hex(4)}"
    subprocess.run(["ip", "link", "add", link, "type", "veth", "peer", "name", f"{link}p"],
                   check=True)
    proc: subprocess.Popen[bytes] | None = None
    try:
        for _ in range(20):
            address = f"10.213.250.{2 + secrets.randbelow(250)}"
            if subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", link],
                              capture_output=True).returncode == 0 and not _bound(address):
                break
        for name in (link, f"{link}p"):
            subprocess.run(["ip", "link", "set", name, "up"], check=True)
        proc = subprocess.Popen(
            [shutil.which("dnsmasq") or "/usr/sbin/dnsmasq", "--keep-in-foreground",
             "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--port=53",
             f"--listen-address={address}", "--bind-interfaces", "--user=root",
             "--group=root", "--pid-file=", "--log-facility=-",
             *[f"--address=/{name}/{ip}" for name, ip in answers.items()], "--address=/#/"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while not _bound(address):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the test DNS server did not start on {address}")
            time.sleep(0.01)
        yield address
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        subprocess.run(["ip", "link", "del", link], capture_output=True)


def private_dns_servers(resolvers_dir: Path) -> list[int]:
    """pids of the containers' own dnsmasq servers whose pid files are under
    `resolvers_dir` (`<root>/network/resolvers`), found by command line."""
    mark = f"--pid-file={resolvers_dir}/".encode()
    pids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if mark in (p / "cmdline").read_bytes():
                pids.append(int(p.name))
    return pids
