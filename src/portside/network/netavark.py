"""The driver: netavark sets up and tears down a container's endpoint on a bridge network.

netavark (Podman's network stack, Debian package `netavark`) creates the bridge and the
veth pair, assigns the address we leased, installs the NAT, forwarding, isolation and
port-forwarding (DNAT) rules in the kernel. (It could also run aardvark-dns for names; we
use dnsmasq instead, see dns.py.) We give it an options document
on stdin; it answers a status block.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

from portside.network.driver import Endpoint
from portside.network.errors import NetworkSetupFailed
from portside.network.store import Network

_LIBEXEC = ("/usr/libexec/podman", "/usr/lib/podman", "/usr/local/libexec/podman")


def find_binary(name: str) -> str:
    """netavark lives in podman's helper directory on Debian."""
    found = shutil.which(name)
    if found:
        return found
    for d in _LIBEXEC:
        cand = os.path.join(d, name)
        if os.access(cand, os.X_OK):
            return cand
    raise NetworkSetupFailed("find", name, f"{name} is not installed (Debian package {name})")


def document(ep: Endpoint) -> dict[str, Any]:
    """netavark's network-options document (podman's `types.NetworkOptions`)."""
    net = ep.network
    options = {"isolate": "true", **{k: v for k, v in net.options.items()
                                     if k in ("mtu", "metric")}}
    return {
        "container_id": ep.container_id,
        "container_name": ep.container_name,
        "port_mappings": [
            {"host_ip": p.host_ip, "container_port": p.container_port,
             "host_port": p.host_port, "range": 1, "protocol": p.proto}
            for p in ep.ports] or None,
        "networks": {net.name: {
            "static_ips": [ep.ip],
            "interface_name": ep.interface,
        }},
        "network_info": {net.name: {
            "name": net.name,
            "id": net.id,
            "driver": "bridge",
            "network_interface": net.bridge,
            "subnets": [{"subnet": net.subnet, "gateway": net.gateway}],
            "ipv6_enabled": False,
            "internal": net.internal,
            "dns_enabled": False,  # names are served by our dnsmasq (dns.py)
            "ipam_options": {"driver": "host-local"},
            "options": options,
        }},
    }


class Netavark:
    """Runs `netavark setup|teardown` (its lock and state files live under `config_dir`)."""

    manages_firewall = True

    def __init__(self, config_dir: Path, netns_dir: Path) -> None:
        self.config_dir = config_dir
        self.netns_dir = netns_dir
        self.binary = find_binary("netavark")

    def _run(self, action: str, netns: str, ep: Endpoint) -> dict[str, Any]:
        # netavark 1.4 fails teardown without its (unused here) aardvark-dns directory
        (self.config_dir / "aardvark-dns").mkdir(parents=True, exist_ok=True)
        res = subprocess.run(
            [self.binary, "--config", str(self.config_dir), action, netns],
            input=json.dumps(document(ep)), capture_output=True, text=True)
        out: dict[str, Any] = {}
        if res.stdout.strip():
            try:
                out = json.loads(res.stdout)
            except json.JSONDecodeError:
                out = {"error": res.stdout}
        if res.returncode != 0 or "error" in out:
            errors = [ln for ln in res.stderr.splitlines() if "syslog" not in ln]
            raise NetworkSetupFailed(action, ep.network.name,
                                     str(out.get("error") or "\n".join(errors)))
        return out

    def setup(self, netns: str, ep: Endpoint) -> dict[str, Any]:
        """Configure the endpoint; returns netavark's status block for the network."""
        block = self._run("setup", netns, ep)
        status: dict[str, Any] = block.get(ep.network.name, {})
        return status

    def teardown(self, netns: str, ep: Endpoint) -> None:
        self._run("teardown", netns, ep)

    def teardown_without_netns(self, ep: Endpoint) -> None:
        """The namespace is gone (its veth with it), or the host rebooted. netavark 1.4
        removes the veth and reads the bridge before the rules and gives up when one is
        missing, so lend it a namespace with a stand-in interface of that name and, if need
        be, an empty bridge (which its teardown removes with the rules)."""
        from portside.network.netns import create_netns, delete_netns

        tmp = create_netns(f"teardown-{secrets.token_hex(6)}", self.netns_dir)
        bridge = ep.network.bridge
        made_bridge = subprocess.run(["ip", "link", "add", bridge, "type", "bridge"],
                                     capture_output=True).returncode == 0
        try:
            subprocess.run(["nsenter", f"--net={tmp}", "ip", "link", "add", ep.interface,
                            "type", "veth", "peer", "name", "standin0"], capture_output=True)
            self.teardown(str(tmp), ep)
        finally:
            delete_netns(tmp)
            if made_bridge:
                subprocess.run(["ip", "link", "del", bridge], capture_output=True)

    def network_gone(self, net: Network) -> None:
        """Remove the network's port-forwarding chain once its last container is gone.

        netavark 1.4 deletes `NETAVARK-DN-<hash>` only when the container leaving last has
        published ports, so an emptied chain can stay behind; `-X` refuses a chain that is
        still used or not empty, so this never removes a live rule.
        """
        chain = "NETAVARK-DN-" + hashlib.sha512(net.name.encode()).hexdigest()[:13].upper()
        subprocess.run(["iptables", "-w", "-t", "nat", "-X", chain], capture_output=True,
                       check=False)
