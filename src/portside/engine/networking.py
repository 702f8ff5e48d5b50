"""The engine's use of `portside.network`: which containers get a bridge, and when.

`--network none` keeps the runtime's private namespace (loopback only, nothing to set
up); `host` shares the host's; `default`, `bridge` or a network's name attach the
container through the network package's glue (a pinned namespace, veth, IPAM, published
ports, /etc/hosts and resolv.conf), torn down when the container exits or is removed.
The NetworkManager is created on first use, so containers without a bridge cost nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from pathlib import Path
from typing import Any

from portside import config as portside_config
from portside.engine.state import Container


def uses_bridge(c: Container) -> bool:
    mode = c.host_config.get("NetworkMode") or "default"
    return mode not in ("none", "host") and not mode.startswith("container:")


class Networking:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._manager: Any = None
        self._lock = threading.Lock()

    @property
    def manager(self) -> Any:
        with self._lock:
            if self._manager is None:
                from portside.network import NetworkManager

                self._manager = NetworkManager(self.root, default_bridge=self._bridge_name())
            return self._manager

    def _bridge_name(self) -> str:
        """`portside0` for the system's root; a name of its own for any other root (tests,
        a second daemon), so two roots never share one bridge."""
        if self.root.resolve() == portside_config.DEFAULT_ROOT:
            return "portside0"
        return "ps" + hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:6] + "b"

    def setup(self, c: Container, container_dir: Path) -> tuple[str | None, dict[str, str]]:
        """(network namespace for the runtime, {container path: host file} to bind)."""
        from portside.network import containers as glue

        done = glue.setup(self.manager, c.id, c.name, c.config, c.host_config, container_dir)
        return done.namespace, done.files

    def teardown(self, c: Container) -> None:
        if not uses_bridge(c):
            return
        from portside.network import containers as glue

        with contextlib.suppress(Exception):
            glue.teardown(self.manager, c.id)

    def settings(self, c: Container) -> dict[str, Any] | None:
        if not uses_bridge(c) or self._manager is None and not (self.root / "network").exists():
            return None
        from portside.network import containers as glue

        try:
            return dict(glue.settings(self.manager, c.id, c.config))
        except Exception:  # noqa: BLE001 - inspect must work even if the network store is off
            return None

    def ports(self, c: Container) -> list[dict[str, Any]]:
        """`Ports` of the container list: [{IP, PrivatePort, PublicPort, Type}]."""
        if not uses_bridge(c) or not c.running:
            return []
        try:
            mappings = self.manager.published_ports(c.id)
        except Exception:  # noqa: BLE001
            return []
        return [{"IP": m.host_ip or "0.0.0.0", "PrivatePort": m.container_port,
                 "PublicPort": m.host_port, "Type": m.proto} for m in mappings]

    def close(self) -> None:
        if self._manager is not None:
            with contextlib.suppress(Exception):
                self._manager.close()
