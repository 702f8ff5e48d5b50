"""Rolling updates and rollbacks with Swarm's `UpdateConfig`/`RollbackConfig` semantics.

An updater replaces the service's outdated tasks (those whose spec is not the service's
`TaskTemplate`), `Parallelism` at a time, in `Order` (stop-first: the old task stops, then
the new one starts; start-first: the old one stops once the new one runs). A new task
counts once it is running and, when it has a health check, healthy; it fails when it
exits, is rejected or turns unhealthy before that or within `Monitor`. When the failed
share of the update passes `MaxFailureRatio`, `FailureAction` says what happens: pause,
continue, or roll back (the service's spec becomes its previous one and the same loop runs
with `RollbackConfig`). Only outdated tasks are replaced, so a rollback never touches the
old tasks that were still healthy. Every state is in the service's `UpdateStatus`, so a
restarted daemon carries on where it stopped.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import TYPE_CHECKING

from portside.errors import PortsideError
from portside.orchestrator.records import Doc, NoSuchService, StaleVersion, now
from portside.orchestrator.spec import UpdatePolicy, replicas
from portside.orchestrator.tasks import new_task

if TYPE_CHECKING:
    from portside.orchestrator.reconciler import Reconciler

log = logging.getLogger("portside.orchestrator.update")

POLL = 0.2
ACTIVE = ("updating", "rollback_started")


class Updater:
    def __init__(self, reconciler: Reconciler, service_id: str) -> None:
        self.r = reconciler
        self.records = reconciler.records
        self.service_id = service_id
        self.pairs: dict[str, str] = {}  # start-first: new task -> the old one it replaces

    def _service(self) -> Doc | None:
        try:
            return self.records.service(self.service_id)
        except NoSuchService:
            return None

    def run(self) -> None:
        try:
            self._run()
        except Exception:
            log.exception("update of %s failed", self.service_id)

    def _run(self) -> None:
        failures: set[str] = set()
        done: set[str] = set()
        template: Doc | None = None
        while True:
            service = self._service()
            if service is None or (service.get("UpdateStatus") or {}).get("State") not in ACTIVE:
                return
            spec = service["Spec"]
            if spec["TaskTemplate"] != template:  # a new update (or a rollback) began
                template, failures, done = spec["TaskTemplate"], set(), set()
            rollback = service["UpdateStatus"]["State"] == "rollback_started"
            policy = UpdatePolicy.of(spec, rollback)
            outdated = self._outdated(service)
            if not outdated:
                self._finish(service, rollback)
                return
            total = len(outdated) + len(done)
            batch = outdated[:policy.parallelism or len(outdated)]
            new_ids = [self._replace(service, old, policy.order) for old in batch]
            failed = self._await(new_ids, policy.monitor, template)
            if failed is None:
                continue  # the spec changed under us: start over with the new one
            done.update(new_ids)
            failures.update(failed)
            if failed and len(failures) > policy.max_failure_ratio * max(total, 1) and \
                    self._fail(service, policy, rollback, failed[0]):
                return
            if policy.delay:
                time.sleep(policy.delay)

    def _outdated(self, service: Doc) -> list[Doc]:
        want = replicas(service["Spec"])
        tasks = [t for t in self.records.tasks(service["ID"]) if t["DesiredState"] == "running"]
        slots: dict[int, list[Doc]] = {}
        for t in tasks:
            slots.setdefault(int(t.get("Slot") or 0), []).append(t)
        outdated = []
        for slot in sorted(slots):
            if want is not None and slot > want:
                continue
            current = slots[slot]
            if all(t["Spec"] != service["Spec"]["TaskTemplate"] for t in current):
                outdated.append(current[0])
        return outdated

    def _replace(self, service: Doc, old: Doc, order: str) -> str:
        node = self.records.node()
        assert node is not None
        with self.r.lock:
            task = new_task(service, int(old.get("Slot") or 0), node["ID"])
            if order == "start-first":
                self.r.place(task, service, node)
                self.pairs[task["ID"]] = old["ID"]
            else:
                fresh = self.records.task(old["ID"])
                self.r.shutdown(fresh, service)
                self.r.place(task, service, node)
        self.r.publish("service", "update", service["ID"],
                       {"name": service["Spec"]["Name"], "task": task["ID"],
                        "replaces": old["ID"]})
        return str(task["ID"])

    def _await(self, new_ids: list[str], monitor: float,
               template: Doc | None) -> list[str] | None:
        """Wait until every new task counts (running, healthy if checked), then `monitor`
        seconds; the tasks that failed. None when the service's spec changed meanwhile."""
        failed: list[str] = []
        waiting = set(new_ids)
        counted: dict[str, float] = {}
        while waiting:
            service = self._service()
            if service is None or service["Spec"]["TaskTemplate"] != template or \
                    (service.get("UpdateStatus") or {}).get("State") not in ACTIVE:
                return None
            self.r.wake()
            for tid in list(waiting):
                try:
                    task = self.records.task(tid)
                except PortsideError:
                    waiting.discard(tid)
                    failed.append(tid)
                    continue
                state = task["Status"]["State"]
                if state in ("failed", "rejected", "complete", "shutdown"):
                    waiting.discard(tid)
                    failed.append(tid)
                    continue
                if state == "running" and self._healthy(task):
                    if tid not in counted:
                        counted[tid] = time.monotonic()
                        self._retire_old(tid, service)
                    if time.monotonic() - counted[tid] >= monitor:
                        waiting.discard(tid)
            time.sleep(POLL)
        return failed

    def _retire_old(self, new_id: str, service: Doc) -> None:
        old_id = self.pairs.pop(new_id, None)
        if old_id is None:
            return
        with self.r.lock:
            try:
                old = self.records.task(old_id)
            except PortsideError:
                return
            if old["DesiredState"] == "running":
                self.r.shutdown(old, service)

    def _healthy(self, task: Doc) -> bool:
        """Running and, with a health check (the spec's or the image's), healthy."""
        cid = task["Status"].get("ContainerStatus", {}).get("ContainerID", "")
        try:
            health = self.r.engine.containers.state(cid).health
        except PortsideError:
            return False
        return health in ("", "healthy")

    def _fail(self, service: Doc, policy: UpdatePolicy, rollback: bool, task_id: str) -> bool:
        """Apply the failure action; whether the update loop ends."""
        if policy.failure_action == "continue":
            return False
        doc = copy.deepcopy(service)
        if policy.failure_action == "rollback" and not rollback and service.get("PreviousSpec"):
            doc["Spec"], doc["PreviousSpec"] = service["PreviousSpec"], service["Spec"]
            doc["UpdateStatus"] = {
                "State": "rollback_started", "StartedAt": service["UpdateStatus"]["StartedAt"],
                "Message": f"update rolled back due to failure or early termination of task "
                           f"{task_id}"}
            ended = False
        else:
            state = "rollback_paused" if rollback else "paused"
            what = "rollback" if rollback else "update"
            doc["UpdateStatus"] = {
                "State": state, "StartedAt": service["UpdateStatus"]["StartedAt"],
                "Message": f"{what} paused due to failure or early termination of task "
                           f"{task_id}"}
            ended = True
        self._write(doc, service)
        return ended

    def _finish(self, service: Doc, rollback: bool) -> None:
        doc = copy.deepcopy(service)
        doc["UpdateStatus"] = {
            "State": "rollback_completed" if rollback else "completed",
            "StartedAt": service["UpdateStatus"].get("StartedAt", now()),
            "CompletedAt": now(),
            "Message": "rollback completed" if rollback else "update completed"}
        self._write(doc, service)

    def _write(self, doc: Doc, service: Doc) -> None:
        try:
            revision = self.records.swap_service(doc, service["Version"]["Index"])
        except StaleVersion:
            return  # the user changed the service meanwhile: the next round reads it
        self.r.publish("service", "update", doc["ID"],
                       {"name": doc["Spec"]["Name"], "revision": str(revision),
                        "updatestate.new": doc["UpdateStatus"]["State"]})
