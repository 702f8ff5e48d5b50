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
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portside import config as portside_config
from portside.engine.state import Container
from portside.errors import Conflict
from portside.state.backend import StateBackend

if TYPE_CHECKING:
    from portside.network.balancer import ServiceBalancer

# Where a container's create-time NetworkingConfig is kept (in its HostConfig record;
# inspect leaves it out).
NETWORKING_KEY = "_NetworkingConfig"


def uses_bridge(c: Container) -> bool:
    mode = c.host_config.get("NetworkMode") or "default"
    return mode not in ("none", "host") and not mode.startswith("container:")


def owns_netns(c: Container) -> bool:
    """Whether the container has (or had at its start) a namespace portside made for it.
    Disconnecting a running container from its last network keeps that namespace, with
    lo only, as Docker keeps the sandbox, though NetworkMode then records "none" for the
    next start: a connect must attach to it, and the stop must remove it."""
    if uses_bridge(c):
        return True
    from portside.network import containers as glue

    return glue.netns_path(c.id).exists()


class Networking:
    """The engine's door to the network layer. `backend` is the state backend the network
    records go to (the engine's own); without one, the manager opens `<root>/state.db`
    (clean-up tools working on a stopped daemon's root). `on_event` receives the network's
    events (NetworkManager.on_event)."""

    def __init__(self, root: Path, backend: StateBackend | None = None,
                 on_event: Callable[[str, Any, dict[str, str]], object] | None = None) -> None:
        self.root = root
        self.backend = backend
        self.on_event = on_event
        self._manager: Any = None
        self._lock = threading.Lock()

    @property
    def manager(self) -> Any:
        with self._lock:
            if self._manager is None:
                from portside.network import NetworkManager

                self._manager = NetworkManager(self.root, backend=self.backend,
                                               default_bridge=self._bridge_name(),
                                               on_event=self.on_event)
            return self._manager

    def balancer(self) -> ServiceBalancer:
        """The root's service load balancer (VIPs, nftables, service names), for the
        orchestrator: `engine.networks.balancer()`; call its `restore()` at start-up."""
        balancer: ServiceBalancer = self.manager.balancer()
        return balancer

    def _bridge_name(self) -> str:
        """`portside0` for the system's root; a name of its own for any other root (tests,
        a second daemon), so two roots never share one bridge."""
        if str(self.root.resolve()) == portside_config.DEFAULT_ROOT_DIR:
            return "portside0"
        return "ps" + hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:6] + "b"

    def setup(self, c: Container, container_dir: Path
              ) -> tuple[str | None, dict[str, str], Callable[[], object] | None]:
        """(network namespace for the runtime, {container path: host file} to bind, and
        for bridged containers the attach still to do before the container's process
        starts: see `portside.network.containers.setup`)."""
        from portside.network import containers as glue

        done = glue.setup(self.manager, c.id, c.name, c.config, c.host_config, container_dir,
                          networking_config=c.host_config.get(NETWORKING_KEY),
                          attach_later=True)
        return done.namespace, done.files, done.attach

    @staticmethod
    def remember(engine: Any, cid: str, network: str, endpoint: dict[str, Any] | None) -> None:
        """`network connect` (endpoint config) or `disconnect` (None): kept in the
        container's NetworkingConfig for its next start, as Docker keeps them."""
        c = engine.get(cid)
        mode = c.host_config.get("NetworkMode") or "default"
        if mode == "host" or mode.startswith("container:"):
            raise Conflict(f"container {c.name} uses network mode {mode}: it cannot be"
                           " connected to networks")
        kept = dict(c.host_config.get(NETWORKING_KEY) or {})
        endpoints = dict(kept.get("EndpointsConfig") or {})
        primary = "bridge" if mode == "default" else mode
        if endpoint is None:
            endpoints.pop(network, None)
            if network == primary:  # the next start attaches what is left, if anything
                endpoints.pop(mode, None)  # docker run's "default" entry
                c.host_config["NetworkMode"] = next(iter(endpoints), "none")
        else:
            endpoints[network] = endpoint
            if mode == "none":
                c.host_config["NetworkMode"] = network
        kept["EndpointsConfig"] = endpoints
        c.host_config[NETWORKING_KEY] = kept
        engine.state.save(c)

    @staticmethod
    def joined(engine: Any, ref: str) -> tuple[str, dict[str, str], str]:
        """`--network container:<ref>`: the other container's network namespace, its
        /etc/hosts, resolv.conf and hostname files, and its hostname (Docker shares them)."""
        from portside.engine.spec import default_hostname
        from portside.network import containers as glue

        other = engine.get(ref)
        if not other.running:
            raise Conflict(f"cannot join network namespace of a non running container:"
                           f" {other.name}")
        mode = other.host_config.get("NetworkMode") or "default"
        if mode == "host":
            netns = "host"
        elif uses_bridge(other):
            netns = str(glue.netns_path(other.id))
        else:  # none (its runtime's own namespace) or itself joined to another one
            netns = f"/proc/{other.state['Pid']}/ns/net"
        d = engine.container_dir(other.id)
        files = {f"/etc/{n}": str(d / n) for n in ("hosts", "resolv.conf", "hostname")
                 if (d / n).exists()}
        return netns, files, default_hostname(other.id, other.config)

    def teardown(self, c: Container) -> None:
        if not owns_netns(c):
            return
        from portside.network import containers as glue

        with contextlib.suppress(Exception):
            glue.teardown(self.manager, c.id)

    def settings(self, c: Container) -> dict[str, Any] | None:
        if not owns_netns(c) or self._manager is None and not (self.root / "network").exists():
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

    def recover(self, live: list[str]) -> None:
        """Daemon start: release the endpoints of containers that are gone."""
        if self._manager is None and not (self.root / "network").exists():
            return
        with contextlib.suppress(Exception):
            self.manager.recover(live)

    def close(self) -> None:
        """Daemon stop: idle bridges go (they come back with the next container)."""
        if self._manager is not None:
            with contextlib.suppress(Exception):
                self._manager.close()
