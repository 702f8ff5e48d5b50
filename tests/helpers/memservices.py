"""In-memory parts for unit tests of the callers of the services interface (stack deploy,
the CLI's convergence wait): services whose tasks all run at once, networks, volumes and
secrets kept in dicts. Integration tests use the daemon's real orchestrator instead."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from typing import Any

from portside.engine.interface import Credentials, Document, Filters, LogChunk, LogOptions
from portside.errors import Conflict, NotFound

_ids = itertools.count(1)


def _labelled(doc: Document, filters: Filters | None, labels: Any) -> bool:
    for item in (filters or {}).get("label", []):
        key, _, value = item.partition("=")
        if not isinstance(labels, dict) or labels.get(key) != value:
            return False
    return True


class MemServices:
    """Services whose tasks run as soon as they are asked for; `outcome` is the
    UpdateStatus state the next update ends in (completed, paused, rollback_completed)."""

    def __init__(self) -> None:
        self.services: dict[str, Document] = {}
        self.calls: list[tuple[str, str]] = []
        self.outcome = "completed"

    def _find(self, ref: str) -> Document:
        for s in self.services.values():
            if ref in (s["ID"], s["Spec"]["Name"]):  # type: ignore[index]
                return s
        raise NotFound(f"service {ref} not found")

    def create(self, spec: Document, auth: Credentials | None = None) -> tuple[str, list[str]]:
        sid = f"svc{next(_ids)}"
        self.services[sid] = {"ID": sid, "Version": {"Index": 1}, "Spec": copy.deepcopy(spec)}
        self.calls.append(("create", str(spec["Name"])))
        return sid, []

    def inspect(self, ref: str) -> Document:
        return copy.deepcopy(self._find(ref))

    def update(self, ref: str, version: int, spec: Document, rollback: bool = False,
               auth: Credentials | None = None) -> list[str]:
        s = self._find(ref)
        if s["Version"]["Index"] != version:  # type: ignore[index]
            raise Conflict("update out of sequence")
        s["PreviousSpec"], s["Spec"] = s["Spec"], copy.deepcopy(spec)
        if rollback or self.outcome.startswith("rollback"):
            s["Spec"] = s["PreviousSpec"]
        s["Version"] = {"Index": version + 1}
        s["UpdateStatus"] = {"State": ("rollback_completed" if rollback else self.outcome),
                             "Message": "update rolled back" if "rollback" in self.outcome
                             else "", "StartedAt": f"t{version}"}
        self.calls.append(("update", str(spec["Name"])))
        return []

    def remove(self, ref: str) -> None:
        s = self._find(ref)
        del self.services[str(s["ID"])]
        self.calls.append(("remove", str(s["Spec"]["Name"])))  # type: ignore[index]

    def tasks(self, filters: Filters | None = None) -> list[Document]:
        out: list[Document] = []
        for s in self.services.values():
            if filters and "service" in filters and s["ID"] not in filters["service"]:
                continue
            spec: Any = s["Spec"]
            for slot in range(1, int(spec["Mode"].get("Replicated", {}).get("Replicas", 1)) + 1):
                out.append({"ID": f"{s['ID']}.{slot}", "ServiceID": s["ID"], "Slot": slot,
                            "DesiredState": "running", "Status": {"State": "running"},
                            "Spec": spec["TaskTemplate"]})
        return out

    def logs(self, ref: str, options: LogOptions) -> Iterator[LogChunk]:
        return iter(())

    def list(self, filters: Filters | None = None) -> list[Document]:
        return [copy.deepcopy(s) for s in self.services.values()
                if _labelled(s, filters, s["Spec"].get("Labels"))]  # type: ignore[union-attr]


class MemNamed:
    """Networks, volumes, secrets or configs by name (the calls stack deploy makes)."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def inspect(self, name: str) -> Document:
        if name not in self.items:
            raise NotFound(f"{name} not found")
        return {"Name": name, **self.items[name]}

    def create(self, options: Any, data: bytes | None = None,
               labels: dict[str, str] | None = None) -> Any:
        if isinstance(options, str):  # a secret or config: name, data, labels
            self.items[options] = {"Labels": labels or {}, "Data": data}
            return options
        self.items[options.name] = {"Labels": options.labels}
        return {"Name": options.name}

    def list(self, filters: Filters | None = None) -> list[Document]:
        return [{"Name": n, "ID": n, "Spec": {"Name": n}, **v} for n, v in self.items.items()
                if _labelled({}, filters, v["Labels"])]

    def remove(self, name: str, force: bool = False) -> None:
        self.items.pop(name, None)
