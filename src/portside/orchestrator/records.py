"""Services, tasks and the swarm as records in the state backend, in Docker's shapes.

Each record is one key holding the document's JSON (`orchestrator/services/<id>`,
`orchestrator/tasks/<id>`, `orchestrator/swarm`, `orchestrator/node`). A document's
`Version.Index` is its key's mod revision, filled in when read, so a writer that read
version N can compare-and-swap against revision N and a stale writer is refused.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from portside.errors import Conflict, NotFound, PortsideError
from portside.state import Compare, Delete, Put, StateBackend

PREFIX = "orchestrator/"
SERVICES = PREFIX + "services/"
TASKS = PREFIX + "tasks/"
NAMES = PREFIX + "names/"  # service name -> ID: names are unique, checked in one txn
SWARM = PREFIX + "swarm"
NODE = PREFIX + "node"

Doc = dict[str, Any]


class NoSuchService(NotFound):
    def __init__(self, ref: str) -> None:
        super().__init__(f"service {ref} not found")
        self.ref = ref


class NoSuchTask(NotFound):
    def __init__(self, ref: str) -> None:
        super().__init__(f"task {ref} not found")
        self.ref = ref


class NoSuchNode(NotFound):
    def __init__(self, ref: str) -> None:
        super().__init__(f"node {ref} not found")
        self.ref = ref


class StaleVersion(Conflict):
    """Docker's answer to an update carrying an out-of-date `version`."""

    def __init__(self, ref: str, version: int, current: int) -> None:
        super().__init__(f"rpc error: code = Unknown desc = update out of sequence "
                         f"({ref}: version {version}, current {current})")


class NotManager(PortsideError):
    http_status = 503

    def __init__(self) -> None:
        super().__init__('This node is not a swarm manager. Use "docker swarm init" or '
                         '"docker swarm join" to connect this node to swarm and try again.')


class AlreadyInSwarm(PortsideError):
    http_status = 503

    def __init__(self) -> None:
        super().__init__('This node is already part of a swarm. Use "docker swarm leave" to '
                         'leave this swarm and join another one.')


class NotInSwarm(PortsideError):
    http_status = 406

    def __init__(self) -> None:
        super().__init__("This node is not part of a swarm")


def new_id() -> str:
    """Swarm's IDs: 25 lowercase alphanumerics."""
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    return "".join(secrets.choice(alphabet) for _ in range(25))


def now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


class Records:
    """Typed access to the orchestrator's keys of one state backend."""

    def __init__(self, backend: StateBackend) -> None:
        self.backend = backend

    # -- reading --

    def _doc(self, raw: bytes, revision: int) -> Doc:
        doc: Doc = json.loads(raw)
        doc["Version"] = {"Index": revision}
        return doc

    def swarm(self) -> Doc | None:
        kv = self.backend.get(SWARM)
        return None if kv is None else self._doc(kv.value, kv.mod_revision)

    def node(self) -> Doc | None:
        kv = self.backend.get(NODE)
        return None if kv is None else self._doc(kv.value, kv.mod_revision)

    def services(self) -> list[Doc]:
        kvs, _ = self.backend.range(SERVICES)
        return [self._doc(kv.value, kv.mod_revision) for kv in kvs]

    def tasks(self, service_id: str | None = None) -> list[Doc]:
        kvs, _ = self.backend.range(TASKS)
        docs = [self._doc(kv.value, kv.mod_revision) for kv in kvs]
        if service_id is not None:
            docs = [d for d in docs if d.get("ServiceID") == service_id]
        return docs

    def service(self, ref: str) -> Doc:
        """By full ID, then name, then unique ID prefix (Docker's order)."""
        if not ref:
            raise NoSuchService(ref)
        kv = self.backend.get(SERVICES + ref)
        if kv is not None:
            return self._doc(kv.value, kv.mod_revision)
        docs = self.services()
        for d in docs:
            if d["Spec"].get("Name") == ref:
                return d
        matches = [d for d in docs if d["ID"].startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise Conflict(f"service {ref} is ambiguous ({len(matches)} matches found)")
        raise NoSuchService(ref)

    def task(self, ref: str) -> Doc:
        kv = self.backend.get(TASKS + ref)
        if kv is not None:
            return self._doc(kv.value, kv.mod_revision)
        matches = [d for d in self.tasks() if d["ID"].startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        raise NoSuchTask(ref)

    # -- writing --

    @staticmethod
    def _raw(doc: Doc) -> bytes:
        return json.dumps({k: v for k, v in doc.items() if k != "Version"},
                          separators=(",", ":")).encode()

    def put_swarm(self, doc: Doc) -> None:
        self.backend.put(SWARM, self._raw(doc))

    def put_node(self, doc: Doc) -> None:
        self.backend.put(NODE, self._raw(doc))

    def swap_node(self, doc: Doc, version: int) -> None:
        result = self.backend.txn([Compare.mod_revision_is(NODE, version)],
                                  [Put(NODE, self._raw(doc))])
        if not result.succeeded:
            current = self.backend.get(NODE)
            raise StaleVersion(f"node {doc['ID']}", version,
                               current.mod_revision if current else 0)

    def create_service(self, doc: Doc) -> None:
        """Refuses a name already taken (Docker: 409 "name conflicts with an existing
        object"); the check and the write are one transaction on the name's key."""
        name = doc["Spec"]["Name"]
        result = self.backend.txn([Compare.absent(NAMES + name)],
                                  [Put(NAMES + name, doc["ID"].encode()),
                                   Put(SERVICES + doc["ID"], self._raw(doc))])
        if not result.succeeded:
            raise Conflict(f"rpc error: code = AlreadyExists desc = name conflicts "
                           f"with an existing object: service {name} already exists")

    def swap_service(self, doc: Doc, version: int) -> int:
        """Write `doc` if the service is still at `version`; the new revision."""
        key = SERVICES + doc["ID"]
        result = self.backend.txn([Compare.mod_revision_is(key, version)],
                                  [Put(key, self._raw(doc))])
        if not result.succeeded:
            current = self.backend.get(key)
            if current is None:
                raise NoSuchService(doc["ID"])
            raise StaleVersion("service " + doc["Spec"].get("Name", doc["ID"]), version,
                               current.mod_revision)
        return result.revision

    def put_task(self, doc: Doc) -> None:
        self.backend.put(TASKS + doc["ID"], self._raw(doc))

    def delete_task(self, task_id: str) -> None:
        self.backend.delete(TASKS + task_id)

    def delete_service(self, service_id: str) -> None:
        kv = self.backend.get(SERVICES + service_id)
        ops: list[Delete] = [Delete(SERVICES + service_id)]
        if kv is not None:
            ops.append(Delete(NAMES + json.loads(kv.value)["Spec"]["Name"]))
        self.backend.txn([], ops)

    def leave(self) -> None:
        self.backend.delete_prefix(PREFIX)
