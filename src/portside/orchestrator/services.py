"""The in-process services interface (`ServicesAPI`, `SwarmAPI`) over the records.

Writes only change desired state (the records) and wake the reconciler; the reconciler
makes the containers match. Each change is a `service` event on the engine's bus.
"""

from __future__ import annotations

import copy
import os
import platform
import socket
from collections.abc import Callable, Iterator

from portside.engine.interface import (
    Credentials,
    Document,
    EngineAPI,
    Filters,
    LogChunk,
    LogOptions,
)
from portside.errors import InvalidArgument
from portside.orchestrator.records import (
    AlreadyInSwarm,
    Doc,
    NoSuchNode,
    NotInSwarm,
    NotManager,
    Records,
    new_id,
    now,
)
from portside.orchestrator.spec import normalise_spec

Publish = Callable[[str, str, str, dict[str, str]], None]


class Swarm:
    """A single-node swarm: `init` makes this host its manager and only node."""

    def __init__(self, records: Records, engine: EngineAPI, publish: Publish,
                 wake: Callable[[], None]) -> None:
        self.records = records
        self.engine = engine
        self.publish = publish
        self.wake = wake

    def require(self) -> Doc:
        node = self.records.node()
        if node is None:
            raise NotManager
        return node

    def init(self, request: Document) -> str:
        node = self.records.node()
        if node is not None:
            raise AlreadyInSwarm
        stamp = now()
        spec: Doc = dict(request.get("Spec") or {})  # type: ignore[arg-type]
        spec.setdefault("Name", "default")
        spec.setdefault("Labels", {})
        spec.setdefault("Orchestration", {})
        spec["Orchestration"].setdefault("TaskHistoryRetentionLimit", 5)
        spec.setdefault("Raft", {"SnapshotInterval": 10000, "LogEntriesForSlowFollowers": 500,
                                 "HeartbeatTick": 1, "ElectionTick": 10})
        spec.setdefault("Dispatcher", {"HeartbeatPeriod": 5_000_000_000})
        spec.setdefault("CAConfig", {"NodeCertExpiry": 7776000000000000})
        spec.setdefault("TaskDefaults", {})
        spec.setdefault("EncryptionConfig", {"AutoLockManagers": False})
        swarm_id = new_id()
        token = "SWMTKN-1-" + new_id() + new_id()
        self.records.put_swarm({
            "ID": swarm_id, "CreatedAt": stamp, "UpdatedAt": stamp, "Spec": spec,
            "TLSInfo": {"TrustRoot": "", "CertIssuerSubject": "", "CertIssuerPublicKey": ""},
            "RootRotationInProgress": False, "DefaultAddrPool": ["10.0.0.0/8"],
            "SubnetSize": 24, "DataPathPort": 4789,
            "JoinTokens": {"Worker": token + "-worker", "Manager": token + "-manager"}})
        node_id = new_id()
        addr = str(request.get("AdvertiseAddr") or "127.0.0.1").rsplit(":", 1)[0]
        info: Doc = dict(self.engine.system.info())
        self.records.put_node({
            "ID": node_id, "CreatedAt": stamp, "UpdatedAt": stamp,
            "Spec": {"Labels": {}, "Role": "manager", "Availability": "active"},
            "Description": {
                "Hostname": socket.gethostname(),
                "Platform": {"Architecture": platform.machine(), "OS": "linux"},
                "Resources": {"NanoCPUs": len(os.sched_getaffinity(0)) * 10**9,
                              "MemoryBytes": int(info.get("MemTotal") or 0)},
                "Engine": {"EngineVersion": str(info.get("ServerVersion") or ""),
                           "Plugins": []},
                "TLSInfo": {}},
            "Status": {"State": "ready", "Addr": addr},
            "ManagerStatus": {"Leader": True, "Reachability": "reachable",
                              "Addr": f"{addr}:2377"}})
        self.publish("node", "create", node_id, {"name": socket.gethostname()})
        return node_id

    def inspect(self) -> Document:
        swarm = self.records.swarm()
        if swarm is None:
            raise NotManager
        return swarm

    def leave(self, force: bool = False) -> None:
        if self.records.node() is None:
            raise NotInSwarm
        if not force:
            raise InvalidArgument(
                "You are attempting to leave the swarm on a node that is participating as a "
                "manager. Removing the last manager erases all current state of the swarm. "
                "Use `--force` to ignore this message.")
        for task in self.records.tasks():
            task["DesiredState"] = "remove"
            self.records.put_task(task)
        for service in self.records.services():
            self.records.delete_service(service["ID"])
        self.wake()
        self.records.leave()

    def nodes(self, filters: Filters | None = None) -> list[Document]:
        node = self.require()
        wanted = filters or {}
        for key in ("id", "name", "role"):
            values = wanted.get(key)
            if not values:
                continue
            have = {"id": node["ID"], "name": node["Description"]["Hostname"],
                    "role": node["Spec"]["Role"]}[key]
            if not any(have.startswith(v) if key == "id" else have == v for v in values):
                return []
        return [node]

    def update_node(self, ref: str, version: int, spec: Document) -> None:
        """Replace the node's spec (labels, availability; the one node stays a manager)."""
        node: Doc = dict(self.node(ref))
        new: Doc = dict(spec)
        if new.get("Role", "manager") != "manager":
            raise InvalidArgument("the only node of a single-node swarm stays a manager")
        if new.get("Availability", "active") not in ("active", "pause", "drain"):
            raise InvalidArgument(f"invalid availability {new.get('Availability')!r}: "
                                  "want active, pause or drain")
        labels = new.get("Labels") or {}
        doc = dict(node)
        doc["Spec"] = {"Labels": labels, "Role": "manager",
                       "Availability": new.get("Availability", "active"),
                       **({"Name": new["Name"]} if new.get("Name") else {})}
        doc["UpdatedAt"] = now()
        self.records.swap_node(doc, version)
        self.publish("node", "update", node["ID"], {"name": node["Description"]["Hostname"]})
        self.wake()

    def node(self, ref: str) -> Document:
        node = self.require()
        if ref in (node["ID"], node["Description"]["Hostname"], "self") or (
                ref and node["ID"].startswith(ref)):
            return node
        raise NoSuchNode(ref)


class Services:
    """Services as desired state; `Version.Index` guards each update."""

    def __init__(self, records: Records, swarm: Swarm, logs: Callable[[str, LogOptions],
                 Iterator[LogChunk]], publish: Publish, wake: Callable[[], None]) -> None:
        self.records = records
        self.swarm = swarm
        self._logs = logs
        self.publish = publish
        self.wake = wake

    def create(self, spec: Document, auth: Credentials | None = None) -> tuple[str, list[str]]:
        self.swarm.require()
        checked = normalise_spec(dict(spec))
        stamp = now()
        sid = new_id()
        doc: Doc = {"ID": sid, "CreatedAt": stamp, "UpdatedAt": stamp, "Spec": checked,
                    "Endpoint": endpoint_of(checked)}
        self.records.create_service(doc)
        self.publish("service", "create", sid, {"name": checked["Name"]})
        self.wake()
        return sid, []

    def inspect(self, ref: str) -> Document:
        self.swarm.require()
        return self.records.service(ref)

    def update(self, ref: str, version: int, spec: Document, rollback: bool = False,
               auth: Credentials | None = None) -> list[str]:
        self.swarm.require()
        current = self.records.service(ref)
        doc = copy.deepcopy(current)
        if rollback:
            previous = current.get("PreviousSpec")
            if previous is None:
                raise InvalidArgument(f"service {current['Spec']['Name']} does not have a "
                                      "previous spec")
            doc["Spec"], doc["PreviousSpec"] = previous, current["Spec"]
            doc["UpdateStatus"] = {"State": "rollback_started", "StartedAt": now(),
                                   "Message": "manually requested rollback"}
        else:
            new = normalise_spec(dict(spec))
            if new.get("Name") != current["Spec"]["Name"]:
                raise InvalidArgument("renaming services is not supported")
            doc["PreviousSpec"], doc["Spec"] = current["Spec"], new
            if new["TaskTemplate"] != current["Spec"]["TaskTemplate"]:
                doc["UpdateStatus"] = {"State": "updating", "StartedAt": now(),
                                       "Message": "update in progress"}
        doc["UpdatedAt"] = now()
        doc["Endpoint"] = endpoint_of(doc["Spec"])
        revision = self.records.swap_service(doc, version)
        self.publish("service", "update", doc["ID"],
                     {"name": doc["Spec"]["Name"], "revision": str(revision)})
        self.wake()
        return []

    def remove(self, ref: str) -> None:
        self.swarm.require()
        doc = self.records.service(ref)
        for task in self.records.tasks(doc["ID"]):
            task["DesiredState"] = "remove"
            self.records.put_task(task)
        self.records.delete_service(doc["ID"])
        self.publish("service", "remove", doc["ID"], {"name": doc["Spec"]["Name"]})
        self.wake()

    def tasks(self, filters: Filters | None = None) -> list[Document]:
        self.swarm.require()
        wanted = filters or {}
        services = {d["ID"]: d for d in self.records.services()}
        names = {d["Spec"]["Name"]: sid for sid, d in services.items()}
        docs = self.records.tasks()
        if wanted.get("service"):
            ids = {names.get(v, v) for v in wanted["service"]}
            docs = [d for d in docs if d["ServiceID"] in ids
                    or any(d["ServiceID"].startswith(v) for v in ids)]
        if wanted.get("id"):
            docs = [d for d in docs if any(d["ID"].startswith(v) for v in wanted["id"])]
        if wanted.get("_up-to-date"):  # the docker client's progress: tasks of the spec
            docs = [d for d in docs if d["ServiceID"] in services
                    and d["Spec"] == services[d["ServiceID"]]["Spec"]["TaskTemplate"]]
        if wanted.get("desired-state"):
            docs = [d for d in docs if d["DesiredState"] in wanted["desired-state"]]
        if wanted.get("node"):
            node = self.records.node() or {}
            docs = [d for d in docs if d.get("NodeID") in wanted["node"]
                    or node.get("Description", {}).get("Hostname") in wanted["node"]]
        if wanted.get("name"):
            docs = [d for d in docs if any(task_name(d, services).startswith(v)
                                           for v in wanted["name"])]
        for label in wanted.get("label", []):
            k, _, v = label.partition("=")
            docs = [d for d in docs if k in (d.get("Labels") or {})
                    and (not v or d["Labels"][k] == v)]
        return [d for d in docs if d["DesiredState"] != "remove"]

    def logs(self, ref: str, options: LogOptions) -> Iterator[LogChunk]:
        self.swarm.require()
        return self._logs(self.records.service(ref)["ID"], options)

    def list(self, filters: Filters | None = None) -> list[Document]:
        self.swarm.require()
        wanted = filters or {}
        docs = self.records.services()
        if wanted.get("name"):
            docs = [d for d in docs if any(d["Spec"]["Name"].startswith(v)
                                           for v in wanted["name"])]
        if wanted.get("id"):
            docs = [d for d in docs if any(d["ID"].startswith(v) for v in wanted["id"])]
        if wanted.get("mode"):
            docs = [d for d in docs if next(iter(d["Spec"]["Mode"])).lower() in wanted["mode"]]
        for label in wanted.get("label", []):
            k, _, v = label.partition("=")
            docs = [d for d in docs if k in (d["Spec"].get("Labels") or {})
                    and (not v or d["Spec"]["Labels"][k] == v)]
        return docs


def add_status(services: list[Document], tasks: list[Document]) -> None:
    """Docker's `ServiceStatus` (`GET /services?status=true`) on each service."""
    for doc in services:
        service: Doc = doc
        mine: list[Doc] = [t for t in tasks if t["ServiceID"] == service["ID"]]
        mode = service["Spec"]["Mode"]
        desired = (mode["Replicated"]["Replicas"] if "Replicated" in mode else
                   sum(t["DesiredState"] == "running" for t in mine))
        service["ServiceStatus"] = {
            "RunningTasks": sum(t["Status"]["State"] == "running" for t in mine),
            "DesiredTasks": desired,
            "CompletedTasks": sum(t["Status"]["State"] == "complete" for t in mine)}


def endpoint_of(spec: Doc) -> Doc:
    endpoint_spec = spec.get("EndpointSpec") or {"Mode": "vip"}
    doc: Doc = {"Spec": endpoint_spec}
    ports = endpoint_spec.get("Ports")
    if ports:
        doc["Ports"] = ports
    return doc


def task_name(task: Doc, services: dict[str, Doc]) -> str:
    service = services.get(task["ServiceID"])
    name = service["Spec"]["Name"] if service else task["ServiceID"]
    return f"{name}.{task.get('Slot') or task.get('NodeID')}"


