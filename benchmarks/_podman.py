"""podman as the benchmarks' reference, set up the way DESIGN.md says it must be here.

A private --root/--runroot (and, when asked, a storage driver and a network config
directory) under the entry's temporary directory, `--runtime runc`, cgroupfs, file events,
and a containers.conf (CONTAINERS_CONF) whose default rlimits fit this host's hard limits.
The image comes from `podman load` of a `portside save` archive (there is no registry to
pull from). `clean()` removes every container, then the whole private storage.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

from benchmarks import NotAvailable

CONTAINERS_CONF = ('[containers]\ndefault_ulimits = ["nofile=20000:20000",'
                   ' "nproc=32768:32768"]\n')


class Podman:
    def __init__(self, work: Path, archive: Path | None = None,
                 storage_driver: str | None = None, private_networks: bool = False) -> None:
        if not shutil.which("podman"):
            raise NotAvailable("podman is not installed")
        conf = work / "containers.conf"
        conf.write_text(CONTAINERS_CONF)
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}
        self.global_args = ["--root", str(work / "podman-root"), "--runroot",
                            str(work / "podman-run"), "--runtime", "runc",
                            "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
        if storage_driver:
            self.global_args += ["--storage-driver", storage_driver]
        if private_networks:  # networks podman creates stay out of /etc
            netconf = work / "podman-networks"
            netconf.mkdir(exist_ok=True)
            self.global_args += ["--network-config-dir", str(netconf)]
        self.base = ["podman", *self.global_args]
        self.private_networks = private_networks
        self.marker = str(work / "podman-run")
        if archive is not None:
            self("load", "-i", str(archive))

    def __call__(self, *args: str) -> str:
        r = subprocess.run([*self.base, *args], env=self.env, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise NotAvailable(f"podman {args[0]} failed: {r.stderr.strip()[-160:]}")
        return r.stdout

    def clean(self) -> None:
        with contextlib.suppress(NotAvailable):
            self("rm", "-f", "-a", "-t", "0")
        with contextlib.suppress(NotAvailable):
            self("pod", "rm", "-f", "-a")
        if self.private_networks:  # never the host's own networks
            with contextlib.suppress(NotAvailable):
                self("network", "prune", "-f")
        with contextlib.suppress(NotAvailable):
            self("system", "reset", "-f")
