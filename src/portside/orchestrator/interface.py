"""The services interface: what a caller (the CLI, a stack deploy) can ask of the orchestrator.

As with the engine interface there are two implementations: the orchestrator itself,
in the daemon's process, and a remote one over the daemon's socket (in `portside.client`).
Services, tasks and nodes are `Document`s in the Docker Engine API's shapes
(`ServiceSpec`, `Service`, `Task`, `Node`): the wire, the store and `inspect` share them,
so the docker client, docker-py and portside's own commands see the same objects.
A service's `Version.Index` is the state backend's revision of its record, so a stale
update is refused (Docker's 409-style `Conflict`), as etcd's compare-and-swap would.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from portside.engine.interface import Credentials, Document, Filters, LogChunk, LogOptions


class ServicesAPI(Protocol):
    def create(self, spec: Document, auth: Credentials | None = None) -> tuple[str, list[str]]:
        """Record a new service from a `ServiceSpec`; its ID and the warnings."""
        ...

    def inspect(self, ref: str) -> Document:
        """The `Service` (ID, Version, CreatedAt, UpdatedAt, Spec, PreviousSpec, Endpoint,
        UpdateStatus) by ID, ID prefix or name."""
        ...

    def update(self, ref: str, version: int, spec: Document, rollback: bool = False,
               auth: Credentials | None = None) -> list[str]:
        """Replace the spec when `version` is still the service's `Version.Index`
        (`rollback`: go back to `PreviousSpec`, as `?rollback=previous`); the warnings."""
        ...

    def remove(self, ref: str) -> None: ...

    def tasks(self, filters: Filters | None = None) -> list[Document]:
        """Tasks (`service`, `name`, `id`, `desired-state`, `node`, `label` filters)."""
        ...

    def logs(self, ref: str, options: LogOptions) -> Iterator[LogChunk]:
        """The logs of every task of a service, as `service logs` shows them."""
        ...

    def list(self, filters: Filters | None = None) -> list[Document]: ...


class SwarmAPI(Protocol):
    """The single-node "swarm" the Docker client expects before `service` commands."""

    def init(self, request: Document) -> str:
        """Make this host a manager (idempotent on one node); its node ID."""
        ...

    def inspect(self) -> Document: ...
    def leave(self, force: bool = False) -> None: ...
    def nodes(self, filters: Filters | None = None) -> list[Document]: ...
    def node(self, ref: str) -> Document: ...

    def update_node(self, ref: str, version: int, spec: Document) -> None:
        """Replace a node's `NodeSpec` (labels, availability) when `version` is current."""
        ...
