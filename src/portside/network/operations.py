"""The Docker network operations on a NetworkManager, in Docker's request and answer
shapes: what the `/networks` handlers (`network.api`) and the in-process engine
(`engine.local`) both do. Blocking (netavark runs): call them from a worker thread.

Connecting a container needs the engine's view of it, given as `lookup(ref) -> ContainerRef`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portside.errors import Conflict
from portside.network.docker import PSEUDO, PSEUDO_IDS, network_doc, parse_ipam, pseudo_doc
from portside.network.errors import InvalidNetworkArgument, NetworkNotFound, PredefinedNetwork
from portside.network.manager import NetworkManager
from portside.network.store import Network


@dataclass
class ContainerRef:
    """What connect/disconnect need of a container (the engine resolves names and ids)."""

    id: str
    name: str
    hostname: str
    netns: str | None  # the namespace path while it runs; None when it does not
    files_dir: Path | None = None  # where its hosts/resolv.conf live, to refresh them
    # Records a connect (the endpoint config) or a disconnect (None) with the container,
    # so its next start has the same networks, as in Docker; with it, a container that is
    # not running can be connected (recorded only).
    remember: Callable[[str, dict[str, Any] | None], None] | None = None


Lookup = Callable[[str], ContainerRef]


def _labels_match(labels: dict[str, str], wanted: list[str]) -> bool:
    for item in wanted:
        key, eq, value = item.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


def _matches(doc: dict[str, Any], filters: dict[str, list[str]], builtin: bool,
             dangling: bool) -> bool:
    for key, wanted in filters.items():
        if key == "name" and not any(w in doc["Name"] for w in wanted):
            return False
        if key == "id" and not any(doc["Id"].startswith(w) for w in wanted):
            return False
        if key == "driver" and doc["Driver"] not in wanted:
            return False
        if key == "label" and not _labels_match(doc["Labels"], wanted):
            return False
        if key == "type" and ("builtin" if builtin else "custom") not in wanted:
            return False
        if key == "dangling" and (("true" in wanted or "1" in wanted) != dangling):
            return False
    return True


def list_docs(m: NetworkManager, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
    """`GET /networks`: the networks (and the pseudo ones) that pass `filters`."""
    out = []
    for net in m.networks():
        eps = m.store.attachments(network_id=net.id)
        doc = network_doc(net, eps)
        if _matches(doc, filters, net.name == "bridge", not eps):
            out.append(doc)
    out += [d for d in (pseudo_doc(n) for n in PSEUDO) if _matches(d, filters, True, True)]
    return out


def find(m: NetworkManager, ref: str) -> Network | str:
    """A network record, or the name of a pseudo network (host, none)."""
    for name, nid in PSEUDO_IDS.items():
        if ref in (name, nid):
            return name
    return m.get(ref)


def inspect_doc(m: NetworkManager, ref: str) -> dict[str, Any]:
    found = find(m, ref)
    if isinstance(found, str):
        return pseudo_doc(found)
    return network_doc(found, m.store.attachments(network_id=found.id))


def create(m: NetworkManager, body: dict[str, Any]) -> Network:
    """`POST /networks/create` from Docker's body (Name, Driver, Internal, IPAM...)."""
    name = body.get("Name") or ""
    if not name:
        raise InvalidNetworkArgument("network name is required")
    if body.get("EnableIPv6"):
        raise InvalidNetworkArgument("IPv6 networks are not supported")
    subnet, gateway = parse_ipam(body)
    if name in PSEUDO:
        raise InvalidNetworkArgument(f"network name {name} is reserved")
    return m.create(name, subnet=subnet, gateway=gateway, internal=bool(body.get("Internal")),
                    labels=dict(body.get("Labels") or {}),
                    options=dict(body.get("Options") or {}),
                    driver=body.get("Driver") or "bridge")


def remove(m: NetworkManager, ref: str) -> None:
    if ref in PSEUDO or ref in PSEUDO_IDS.values():
        raise PredefinedNetwork(ref)
    m.remove(ref)


def _lookup(lookup: Lookup | None, ref: str) -> ContainerRef:
    if lookup is None:
        raise Conflict("connecting containers needs the engine (no container lookup given)")
    return lookup(ref)


def connect(m: NetworkManager, lookup: Lookup | None, network: str,
            body: dict[str, Any]) -> None:
    """`POST /networks/{id}/connect` (body: Container, EndpointConfig)."""
    net = find(m, network)
    if isinstance(net, str):
        raise InvalidNetworkArgument(f"container cannot be connected to network {net}")
    ref = _lookup(lookup, str(body.get("Container") or ""))
    cfg = body.get("EndpointConfig") or {}
    if not ref.netns:
        if ref.remember is None:
            raise Conflict(f"container {ref.name} is not running: give --network at create")
        ref.remember(net.name, cfg)
        return
    ip = (cfg.get("IPAMConfig") or {}).get("IPv4Address") or None
    m.attach(ref.id, ref.netns, net.name, aliases=list(cfg.get("Aliases") or []), ip=ip,
             hostname=ref.hostname, container_name=ref.name)
    if ref.remember is not None:
        ref.remember(net.name, cfg)
    if ref.files_dir is not None:
        _refresh_files(m, ref)


def disconnect(m: NetworkManager, lookup: Lookup | None, network: str,
               body: dict[str, Any]) -> None:
    """`POST /networks/{id}/disconnect` (body: Container, Force)."""
    net = find(m, network)
    if isinstance(net, str):
        raise NetworkNotFound(net)
    ref = _lookup(lookup, str(body.get("Container") or ""))
    if ref.netns or ref.remember is None:
        m.detach(ref.id, ref.netns, net.name)
    if ref.remember is not None:
        ref.remember(net.name, None)
    if ref.files_dir is not None:
        _refresh_files(m, ref)


def _refresh_files(m: NetworkManager, ref: ContainerRef) -> None:
    """Rewrite resolv.conf in place (it is bind-mounted: the inode must stay), with the
    container's --dns, --dns-search and --dns-option as given at its start."""
    from portside.network.files import resolv_conf

    assert ref.files_dir is not None
    path = ref.files_dir / "resolv.conf"
    asked = m.resolvers.settings(ref.id)
    if path.exists():
        with open(path, "r+") as f:
            f.truncate(0)
            f.write(resolv_conf(m.attachments(ref.id), asked.servers, asked.search,
                                asked.options))


def prune(m: NetworkManager, filters: dict[str, list[str]]) -> list[str]:
    labels = dict(item.partition("=")[::2] for item in filters.get("label", []))
    removed: list[str] = m.prune(labels or None)
    return removed
