"""`RemoteServices` and `RemoteSwarm`: the services interface over the daemon's socket.

The Docker Engine API's `/services`, `/tasks`, `/swarm` and `/nodes` routes, with Docker's
documents as they are (`ServiceSpec` in, `Service`/`Task`/`Node` out). Errors come back as
the class the orchestrator raised (`errors.from_wire` in the transport), so a stale
`version` is the same `Conflict` here as in the daemon's process.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

from portside.client.remote import _auth_header, _closing, _filters, _q
from portside.client.transport import Client, demux_frames
from portside.engine.interface import Credentials, Document, Filters, LogChunk, LogOptions
from portside.orchestrator.interface import ServicesAPI, SwarmAPI


def _json_body(client: Client, method: str, path: str, params: dict[str, Any] | None,
               body: Any, headers: dict[str, str]) -> Any:
    resp = client.request(method, path, params, body, headers=headers)
    raw = resp.read()
    return json.loads(raw) if raw.strip() else None


class RemoteServices:
    def __init__(self, client: Client) -> None:
        self.c = client

    def create(self, spec: Document, auth: Credentials | None = None) -> tuple[str, list[str]]:
        out = _json_body(self.c, "POST", "/services/create", None, spec, _auth_header(auth))
        return str(out["ID"]), list(out.get("Warnings") or [])

    def inspect(self, ref: str) -> Document:
        return cast(Document, self.c.get(f"/services/{_q(ref)}", insertDefaults=True))

    def update(self, ref: str, version: int, spec: Document, rollback: bool = False,
               auth: Credentials | None = None) -> list[str]:
        params: dict[str, Any] = {"version": version,
                                  "rollback": "previous" if rollback else None}
        out = _json_body(self.c, "POST", f"/services/{_q(ref)}/update", params, spec,
                         _auth_header(auth))
        return list((out or {}).get("Warnings") or [])

    def remove(self, ref: str) -> None:
        self.c.json("DELETE", f"/services/{_q(ref)}")

    def tasks(self, filters: Filters | None = None) -> list[Document]:
        return cast(list[Document], self.c.get("/tasks", filters=_filters(filters)))

    def logs(self, ref: str, options: LogOptions) -> Iterator[LogChunk]:
        resp = self.c.request("GET", f"/services/{_q(ref)}/logs", {
            "follow": options.follow, "stdout": options.stdout, "stderr": options.stderr,
            "timestamps": options.timestamps, "since": options.since or None,
            "tail": options.tail})
        return _closing(demux_frames(resp, False), resp)

    def list(self, filters: Filters | None = None) -> list[Document]:
        return cast(list[Document], self.c.get("/services", filters=_filters(filters)))


class RemoteSwarm:
    def __init__(self, client: Client) -> None:
        self.c = client

    def init(self, request: Document) -> str:
        return str(self.c.post("/swarm/init", request))

    def inspect(self) -> Document:
        return cast(Document, self.c.get("/swarm"))

    def leave(self, force: bool = False) -> None:
        self.c.post("/swarm/leave", None, force=force)

    def nodes(self, filters: Filters | None = None) -> list[Document]:
        return cast(list[Document], self.c.get("/nodes", filters=_filters(filters)))

    def node(self, ref: str) -> Document:
        return cast(Document, self.c.get(f"/nodes/{_q(ref)}"))

    def update_node(self, ref: str, version: int, spec: Document) -> None:
        self.c.post(f"/nodes/{_q(ref)}/update", spec, version=version)


def _conforms(services: RemoteServices, swarm: RemoteSwarm) -> tuple[ServicesAPI, SwarmAPI]:
    """Static proof (mypy) that the classes implement the interfaces."""
    return services, swarm
