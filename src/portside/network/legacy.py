"""The network records from before the state backend: `<root>/network/network.db`, moved once.

That SQLite file had three tables: `networks` (with `last_ip`, the round-robin cursor),
`attachments` (one row per endpoint, its address unique per network) and `ports` (the
published ports of an endpoint, in the order they were added). `migrate` turns them into
the records `NetworkStore` writes today, the address leases (`ipam/`) among them, and hands
them to `portside.state.migrate.import_once`, which copies them in one transaction and
renames the file to `network.db.migrated`.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from portside.network.store import (
    ATTACHMENTS,
    IPAM,
    IPAM_LAST,
    NETWORK_NAMES,
    NETWORKS,
    PORTS,
    Network,
    attachment_doc,
    network_doc,
    port_doc,
)
from portside.state.backend import Put, StateBackend
from portside.state.migrate import Kind, import_once, read_table

FILENAME = "network.db"


def migrate(directory: Path, backend: StateBackend) -> int:
    """Move the records of `<directory>/network.db` into `backend`, if that file is there."""
    return import_once(backend, Path(directory) / FILENAME, _read)


def _read(conn: sqlite3.Connection) -> list[Kind]:
    networks = Kind(NETWORKS)
    for r in read_table(conn, "networks"):
        net = Network(id=r["id"], name=r["name"], driver=r["driver"], bridge=r["bridge"],
                      subnet=r["subnet"], gateway=r["gateway"], internal=bool(r["internal"]),
                      dns_enabled=bool(r["dns_enabled"]), labels=json.loads(r["labels"]),
                      options=json.loads(r["options"]), created=r["created"])
        networks.puts += [Put(NETWORKS + net.id, network_doc(net)),
                          Put(NETWORK_NAMES + net.name, net.id.encode())]
        if r["last_ip"]:
            networks.puts.append(Put(IPAM_LAST + net.id, r["last_ip"].encode()))
    attachments = Kind(ATTACHMENTS)
    for r in read_table(conn, "attachments"):
        cid, nid = r["container_id"], r["network_id"]
        attachments.puts += [
            Put(f"{ATTACHMENTS}{cid}/{nid}", attachment_doc(
                r["container_name"], r["hostname"], r["netns"], r["interface"], r["ip"],
                r["mac"], json.loads(r["aliases"]), r["seq"])),
            Put(f"{IPAM}{nid}/{r['ip']}", cid.encode())]
    position: dict[tuple[str, str], int] = {}
    for r in read_table(conn, "ports"):
        endpoint = (r["container_id"], r["network_id"])
        n = position[endpoint] = position.get(endpoint, -1) + 1
        attachments.puts.append(Put(
            f"{PORTS}{endpoint[0]}/{endpoint[1]}/{n:05d}",
            port_doc(r["host_ip"], r["host_port"], r["container_port"], r["proto"])))
    return [networks, attachments]
