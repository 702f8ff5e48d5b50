"""Container and exec records in the state backend: what `inspect` shows, across restarts.

A container is one JSON document under `containers/<id>` holding Docker's shapes (Config,
HostConfig, State, Mounts) so the API can serve them as they are; `names/<name>` holds the
id of the container with that name, created in the same transaction as the record and only
if absent, so of two creates racing for a name exactly one wins, also across processes.
Exec instances are kept under `execs/<id>`. Ids are 64 hex characters; lookups accept a
full id, a unique id prefix or a name.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from portside import times
from portside.errors import Conflict, InvalidArgument, NotFound
from portside.state.backend import Compare, Delete, Get, Put, StateBackend

CONTAINERS = "containers/"
NAMES = "names/"
EXECS = "execs/"
HISTORY = 10_000  # revisions of history the engine keeps for watchers
COMPACT_EVERY = 1_000  # record writes between two compactions

ZERO_TIME = "0001-01-01T00:00:00Z"


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339(text: str) -> float:
    if not text or text.startswith("0001-"):
        return 0.0
    return times.parse_rfc3339(text)


class NoSuchContainer(NotFound):
    def __init__(self, ref: str) -> None:
        super().__init__(f"No such container: {ref}")
        self.ref = ref


class NameInUse(Conflict):
    def __init__(self, name: str, holder: str) -> None:
        super().__init__(f'Conflict. The container name "/{name}" is already in use by container'
                         f' "{holder}". You have to remove (or rename) that container to be able'
                         " to reuse that name.")


def new_state() -> dict[str, Any]:
    return {"Status": "created", "Running": False, "Paused": False, "Restarting": False,
            "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
            "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME}


@dataclass
class Container:
    id: str
    name: str
    created: str
    image: str
    image_id: str
    config: dict[str, Any]
    host_config: dict[str, Any]
    state: dict[str, Any] = field(default_factory=new_state)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    restart_count: int = 0
    runtime: str = "crun"

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def status(self) -> str:
        return str(self.state["Status"])

    @property
    def running(self) -> bool:
        return bool(self.state["Running"])


def container_doc(c: Container) -> bytes:
    """The record of `c` as stored under `containers/<id>`."""
    return json.dumps({
        "id": c.id, "name": c.name, "created": c.created, "image": c.image,
        "image_id": c.image_id, "config": c.config, "host_config": c.host_config,
        "state": c.state, "mounts": c.mounts, "restart_count": c.restart_count,
        "runtime": c.runtime}).encode()


def container_from_doc(value: bytes) -> Container:
    d = json.loads(value)
    return Container(d["id"], d["name"], d["created"], d["image"], d["image_id"],
                     d["config"], d["host_config"], d["state"], d["mounts"],
                     d.get("restart_count", 0), d.get("runtime", "crun"))


def exec_doc(container_id: str, config: dict[str, Any], state: dict[str, Any]) -> bytes:
    return json.dumps({"container_id": container_id, "config": config,
                       "state": state}).encode()


class StateStore:
    """Container and exec records in a `StateBackend` (shared with the engine's other
    parts, so the backend is its builder's to close).

    Writes that must not race are transactions: `add` creates the record and its name key
    only if both are absent; `rename` moves the name key and rewrites the record only if
    nobody changed the record since it was read and the new name is free; `remove` deletes
    the record, its name key and its execs at once. `save` rewrites the record only while
    its name key still points at it, so a late save never brings a removed container back
    (the engine's per-container lock makes it the only writer of the record).

    Every save is a revision with a history row (what watchers replay), and a health check
    saves at each probe, so the store compacts the history every `compact_every` of its
    writes to the last `history` revisions (the event bus compacts too; each only moves
    the compaction point forward)."""

    def __init__(self, backend: StateBackend, history: int = HISTORY,
                 compact_every: int = COMPACT_EVERY) -> None:
        self.backend = backend
        self.history = history
        self.compact_every = compact_every
        self._writes = 0

    def _wrote(self, revision: int) -> None:
        self._writes += 1
        if self._writes % self.compact_every == 0 and revision > self.history:
            self.backend.compact(revision - self.history)  # no-op unless it moves forward

    def close(self) -> None:
        """Nothing to release: the backend outlives the store."""

    def add(self, c: Container) -> None:
        name_key = NAMES + c.name
        r = self.backend.txn(
            [Compare.absent(name_key), Compare.absent(CONTAINERS + c.id)],
            [Put(CONTAINERS + c.id, container_doc(c)), Put(name_key, c.id.encode())],
            [Get(name_key)])
        self._wrote(r.revision)
        if not r.succeeded:
            holder = r.responses[0].kvs
            if holder:
                raise NameInUse(c.name, holder[0].value.decode())
            raise Conflict(f"container {c.id} exists already")

    def save(self, c: Container) -> None:
        """Rewrite the record of `c` (a container that is gone stays gone). A changed
        `c.name` is a rename."""
        r = self.backend.txn([Compare.value_is(NAMES + c.name, c.id.encode())],
                             [Put(CONTAINERS + c.id, container_doc(c))],
                             [Get(CONTAINERS + c.id)])
        self._wrote(r.revision)
        if not r.succeeded and r.responses[0].kvs:
            self.rename(c, c.name)

    def rename(self, c: Container, new_name: str) -> None:
        """Give `c` the name `new_name` (Docker's leading `/` allowed) and record `c`:
        `NameInUse` when another container has it, `NoSuchContainer` when `c` is gone."""
        new_name = new_name.removeprefix("/")
        new_key = NAMES + new_name
        key = CONTAINERS + c.id
        ours = False  # the new name's key points at `c` already (only the record lags)
        while True:
            kv = self.backend.get(key)
            if kv is None:
                raise NoSuchContainer(c.id)
            old_name = container_from_doc(kv.value).name
            c.name = new_name
            compares = [Compare.mod_revision_is(key, kv.mod_revision)]
            ops: list[Put | Delete] = [Put(key, container_doc(c))]
            if old_name != new_name:
                ops.append(Delete(NAMES + old_name))
                if ours:
                    compares.append(Compare.value_is(new_key, c.id.encode()))
                else:
                    compares.append(Compare.absent(new_key))
                    ops.append(Put(new_key, c.id.encode()))
            r = self.backend.txn(compares, ops, [Get(new_key)])
            self._wrote(r.revision)
            if r.succeeded:
                return
            holder = r.responses[0].kvs
            if holder and holder[0].value.decode() != c.id:
                c.name = old_name
                raise NameInUse(new_name, holder[0].value.decode())
            ours = bool(holder)  # then read again: the record changed since it was read

    def remove(self, container_id: str) -> None:
        """Delete the record, its name key and its exec records in one transaction."""
        key = CONTAINERS + container_id
        while True:
            kv = self.backend.get(key)
            execs = [Delete(e.key) for e in self.backend.range(EXECS)[0]
                     if json.loads(e.value)["container_id"] == container_id]
            if kv is None:
                if execs:
                    self.backend.txn([], execs)
                return
            name = container_from_doc(kv.value).name
            r = self.backend.txn([Compare.mod_revision_is(key, kv.mod_revision)],
                                 [Delete(key), Delete(NAMES + name), *execs])
            self._wrote(r.revision)
            if r.succeeded:
                return

    def all(self) -> list[Container]:
        """Every container, the newest first."""
        kvs, _ = self.backend.range(CONTAINERS)
        return sorted((container_from_doc(kv.value) for kv in kvs),
                      key=lambda c: c.created, reverse=True)

    def get(self, ref: str) -> Container:
        """By full id, exact name (with or without Docker's leading `/`), or unique id prefix."""
        ref = ref.strip()
        if not ref:
            raise InvalidArgument("empty container name or id")
        kv = self.backend.get(CONTAINERS + ref)
        if kv is None:
            named = self.backend.get(NAMES + ref.removeprefix("/"))
            if named is not None:
                kv = self.backend.get(CONTAINERS + named.value.decode())
        if kv is None and all(ch in "0123456789abcdef" for ch in ref):
            kvs, _ = self.backend.range(CONTAINERS + ref)  # keys sort by id: only matches
            if len(kvs) > 1:
                raise InvalidArgument(f"multiple containers found with provided prefix: {ref}")
            kv = kvs[0] if kvs else None
        if kv is None:
            raise NoSuchContainer(ref)
        return container_from_doc(kv.value)

    def names(self) -> set[str]:
        kvs, _ = self.backend.range(NAMES)
        return {kv.key[len(NAMES):] for kv in kvs}

    # -- exec instances: kept so `exec inspect` works after the fact --

    def add_exec(self, exec_id: str, container_id: str, config: dict[str, Any],
                 state: dict[str, Any]) -> None:
        self.backend.put(EXECS + exec_id, exec_doc(container_id, config, state))

    def get_exec(self, exec_id: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
        kv = self.backend.get(EXECS + exec_id) if exec_id else None
        if kv is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        d = json.loads(kv.value)
        return d["container_id"], d["config"], d["state"]


def unix_created(c: Container) -> int:
    return int(parse_rfc3339(c.created) or time.time())
