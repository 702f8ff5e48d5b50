"""The default driver: CNI's bridge plugin wires the endpoint, our nftables table does the rest.

The reference `bridge` plugin (Debian `containernetworking-plugins`) creates the bridge
with the gateway address, the veth pair, the container's address and routes (from the
`static` IPAM plugin: the address we leased, a default route unless the network is
internal) and turns hairpin mode on, all over netlink, in one short-lived process. It is
invoked per the CNI spec (CNI_COMMAND/CNI_CONTAINERID/CNI_NETNS/CNI_IFNAME/CNI_PATH in
the environment, the network config on stdin, the result or an error as JSON on stdout).
NAT, port forwarding and isolation are one nftables table (firewall.py), rewritten in a
single atomic transaction per change: no per-rule process spawns on the start path.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from portside.network.driver import Endpoint
from portside.network.errors import NetworkSetupFailed
from portside.network.store import Network

CNI_PATH = os.environ.get("PORTSIDE_CNI_PATH", "/usr/lib/cni")


class CniBridge:
    """Runs the CNI bridge plugin for one endpoint at a time."""

    manages_firewall = False

    def __init__(self, plugin_dir: str = CNI_PATH) -> None:
        self.plugin_dir = plugin_dir
        if not os.access(Path(plugin_dir) / "bridge", os.X_OK):
            raise NetworkSetupFailed("find", "bridge", f"no CNI bridge plugin in {plugin_dir}"
                                     " (Debian package containernetworking-plugins)")

    def config(self, ep: Endpoint) -> dict[str, Any]:
        net = ep.network
        routes = [] if net.internal else [{"dst": "0.0.0.0/0", "gw": net.gateway}]
        conf: dict[str, Any] = {
            "cniVersion": "1.0.0", "name": net.name, "type": "bridge", "bridge": net.bridge,
            "isGateway": True, "ipMasq": False, "hairpinMode": True,
            "ipam": {"type": "static", "routes": routes,
                     "addresses": [{"address": f"{ep.ip}/{net.prefix}",
                                    "gateway": net.gateway}]},
        }
        if net.options.get("mtu"):
            conf["mtu"] = int(net.options["mtu"])
        return conf

    def _run(self, command: str, netns: str, ep: Endpoint) -> dict[str, Any]:
        env = {"CNI_COMMAND": command, "CNI_CONTAINERID": ep.container_id,
               "CNI_NETNS": netns, "CNI_IFNAME": ep.interface, "CNI_PATH": self.plugin_dir,
               "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
        res = subprocess.run([str(Path(self.plugin_dir) / "bridge")],
                             input=json.dumps(self.config(ep)), env=env, capture_output=True,
                             text=True)
        out: dict[str, Any] = {}
        if res.stdout.strip():
            try:
                out = json.loads(res.stdout)
            except json.JSONDecodeError:
                out = {"msg": res.stdout}
        if res.returncode != 0:
            msg = out.get("msg") or res.stderr or "bridge plugin failed"
            if out.get("details"):
                msg += f": {out['details']}"
            raise NetworkSetupFailed(command.lower(), ep.network.name, msg)
        return out

    def setup(self, netns: str, ep: Endpoint) -> dict[str, Any]:
        """ADD; answers {"interfaces": {ifname: {"mac_address": ...}}} like netavark."""
        result = self._run("ADD", netns, ep)
        macs = {i.get("name"): i.get("mac", "") for i in result.get("interfaces", [])
                if i.get("sandbox")}
        if ep.ports:  # 127.0.0.1 -> container: the kernel must route loopback sources out
            _sysctl(f"net/ipv4/conf/{ep.network.bridge}/route_localnet", "1")
        return {"interfaces": {ep.interface: {"mac_address": macs.get(ep.interface, "")}}}

    def teardown(self, netns: str, ep: Endpoint) -> None:
        """DEL; a namespace already gone is fine (CNI spec: DEL must tolerate it)."""
        self._run("DEL", netns, ep)

    def teardown_without_netns(self, ep: Endpoint) -> None:
        """Nothing to undo: the veth pair went with the namespace, the `static` IPAM
        plugin keeps no state and `ipMasq` is off (the lease is ours, in the store). A DEL
        would only spend a plugin process (~10 ms) on the `run --rm` path."""

    def network_gone(self, net: Network) -> None:
        """The last endpoint left. The bridge stays while the network exists (as Docker's
        do): the next container skips creating it; `NetworkManager.remove` deletes it."""


def _sysctl(key: str, value: str) -> None:
    with contextlib.suppress(OSError):
        Path("/proc/sys", key).write_text(value)
