"""The reconciler: makes this host's task containers match the services' desired state.

One thread does every pass, woken by the state backend's watch on the orchestrator's keys
(any change of a service or task), by the engine (a task container exited or changed
health) and by a period, so a missed wake-up only delays convergence. A pass reads the
records and the containers labelled as tasks, then: records what each task's container
is doing (running, exited with its code, unhealthy), fills empty slots (the restart
policy decides whether and when), shuts down tasks beyond the replica count, removes what
belongs to no service, trims each slot's history to the task-history limit, and tells the
balancer the addresses of the running tasks. Rolling updates run beside it
(`portside.orchestrator.updater`), one thread per service, under the same lock.

After a daemon restart the records and the containers' labels are all it needs: a task
whose container still runs is adopted as it is, never started twice.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from portside.engine.interface import CreateOptions, EngineAPI
from portside.errors import NotFound, PortsideError
from portside.network.balancer import ServiceBalancer, ServiceEndpoint
from portside.orchestrator.endpoints import endpoint_of
from portside.orchestrator.placement import unplaceable
from portside.orchestrator.records import PREFIX, Doc, Records
from portside.orchestrator.spec import RestartPolicy, replicas
from portside.orchestrator.tasks import (
    LIVE,
    TASK_LABEL,
    age,
    container_name,
    create_body,
    image_name,
    new_task,
    set_status,
)
from portside.state import StateBackend

log = logging.getLogger("portside.orchestrator")

PERIOD = 5.0
Publish = Callable[[str, str, str, dict[str, str]], None]


class Reconciler:
    def __init__(self, records: Records, backend: StateBackend, engine: EngineAPI,
                 publish: Publish, balancer: ServiceBalancer | None = None,
                 period: float = PERIOD) -> None:
        self.records = records
        self.backend = backend
        self.engine = engine
        self.publish = publish
        self.balancer = balancer
        self.period = period
        self.lock = threading.RLock()  # one writer of tasks at a time (passes, updaters)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._next: float | None = None  # when a delayed restart is due
        self.updaters: dict[str, threading.Thread] = {}
        self._endpoints: dict[str, ServiceEndpoint] = {}

    # -- lifecycle --

    def start(self) -> None:
        for target, name in ((self._run, "reconciler"), (self._watch, "reconciler-watch")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout=10)

    def wake(self, *_: Any) -> None:
        self._wake.set()

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                with self.backend.watch(PREFIX, self.backend.revision() + 1) as watch:
                    while not self._stop.is_set():
                        if watch.get(timeout=1.0) is not None:
                            self._wake.set()
            except PortsideError as exc:  # compacted or closed: start again from now
                log.debug("watch restarted: %s", exc)
                self._stop.wait(1.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            timeout = self.period
            if self._next is not None:
                timeout = max(0.05, min(timeout, self._next - time.monotonic()))
            self._wake.wait(timeout)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.reconcile()
            except Exception:  # a failed pass is retried on the next wake-up
                log.exception("reconcile pass failed")

    # -- one pass --

    def reconcile(self) -> None:
        with self.lock:
            self._next = None
            node = self.records.node()
            services = {s["ID"]: s for s in self.records.services()} if node else {}
            found = self._task_containers()
            containers = dict(found)
            for task in self.records.tasks():
                if task["ServiceID"] not in services or task["DesiredState"] == "remove":
                    self._discard(task, containers.pop(task["ID"], None))
                    continue
                containers.pop(task["ID"], None)  # left over: containers of no task
            for cid in containers.values():
                with contextlib.suppress(PortsideError):
                    self.engine.containers.remove(cid, force=True, volumes=False)
            for gone in set(self._endpoints) - set(services):
                self._endpoints.pop(gone)
                if self.balancer is not None:
                    with contextlib.suppress(PortsideError):
                        self.balancer.remove(gone)
            if node is None:
                return
            for service in services.values():
                self._service(service, node, found)

    def _task_containers(self) -> dict[str, str]:
        summaries = self.engine.containers.list(all=True, filters={"label": [TASK_LABEL]})
        return {s.labels[TASK_LABEL]: s.id for s in summaries}

    def _discard(self, task: Doc, cid: str | None) -> None:
        if cid is not None:
            with contextlib.suppress(PortsideError):
                self.engine.containers.remove(cid, force=True)
        self.records.delete_task(task["ID"])

    def _service(self, service: Doc, node: Doc, containers: dict[str, str]) -> None:
        spec = service["Spec"]
        tasks = self.records.tasks(service["ID"])
        for task in tasks:
            if task["Status"]["State"] in ("new", "assigned") and task["DesiredState"] == \
                    "running":
                self._adopt(task, service, containers.get(task["ID"]))
            self.observe(task, service)
        want = replicas(spec)
        slots = range(1, want + 1) if want is not None else [0]
        live: dict[int, list[Doc]] = {}
        for task in tasks:
            if task["DesiredState"] == "running":
                live.setdefault(int(task.get("Slot") or 0), []).append(task)
        updating = service["ID"] in self.updaters and self.updaters[service["ID"]].is_alive()
        drained = node["Spec"].get("Availability") == "drain"
        for slot, running in list(live.items()):
            if drained:  # Swarm moves a drained node's tasks elsewhere: here, to pending
                for task in running:
                    if task["Status"]["State"] != "pending":
                        self.shutdown(task, service)
                live[slot] = [t for t in running if t["DesiredState"] == "running"]
                if not live[slot]:
                    del live[slot]
            elif slot not in slots:
                for task in running:
                    self.shutdown(task, service)
            elif len(running) > 1 and not updating:
                # a start-first step cut short by a restart: keep the newest task
                running.sort(key=lambda t: (t["Spec"] == spec["TaskTemplate"], t["CreatedAt"]))
                for task in running[:-1]:
                    self.shutdown(task, service)
                live[slot] = running[-1:]
        for slot in slots:
            if slot in live:
                pending = [t for t in live[slot] if t["Status"]["State"] == "pending"]
                for task in pending:
                    self.place(task, service, node)
                continue
            history = sorted((t for t in tasks if int(t.get("Slot") or 0) == slot),
                             key=lambda t: t["CreatedAt"])
            if self._may_restart(service, history):
                task = new_task(service, slot, node["ID"])
                if history and history[-1]["Status"]["State"] in ("failed", "rejected",
                                                                  "complete"):
                    # restarts so far, kept in the task: trimmed history cannot tell
                    task["RestartAttempt"] = int(history[-1].get("RestartAttempt", 0)) + 1
                # the slot's history makes room first, so no reader sees one task too many
                self._trim(service, slots, making_room=slot)
                self.place(task, service, node)
        self._trim(service, slots)
        self._balance(service)
        if (service.get("UpdateStatus") or {}).get("State") in ("updating", "rollback_started"):
            self._ensure_updater(service["ID"])

    def _adopt(self, task: Doc, service: Doc, cid: str | None) -> None:
        """A task left between placement and start (placements run under the lock, so only
        a daemon that died mid-way leaves one): carry on with its container, or fail it."""
        if cid is None:
            set_status(task, "failed", "assigned", "task: lost before its container started")
            task["DesiredState"] = "shutdown"
            self.records.put_task(task)
            return
        set_status(task, "starting", "starting",
                   container={"ContainerID": cid, "PID": 0, "ExitCode": 0})
        with contextlib.suppress(PortsideError):
            if not self.engine.containers.state(cid).running:
                self.engine.containers.start(cid)
        self.records.put_task(task)

    def observe(self, task: Doc, service: Doc) -> None:
        """Record what the task's container is doing."""
        state = task["Status"]["State"]
        if state not in ("starting", "running"):
            return
        cid = task["Status"].get("ContainerStatus", {}).get("ContainerID", "")
        try:
            st = self.engine.containers.state(cid)
        except NotFound:
            if set_status(task, "failed", "started", "task: container gone"):
                task["DesiredState"] = "shutdown"
                self.records.put_task(task)
            return
        cstatus = {"ContainerID": cid, "PID": st.pid, "ExitCode": st.exit_code}
        if st.running and st.health == "unhealthy":
            with contextlib.suppress(PortsideError):
                self.engine.containers.stop(cid, timeout=5)
            set_status(task, "failed", "started", "task: unhealthy container",
                       {**cstatus, "PID": 0})
            task["DesiredState"] = "shutdown"
            self._event(service, "task failed", task)
        elif st.running:
            if not set_status(task, "running", "started", container=cstatus):
                return
        elif task["DesiredState"] == "shutdown":
            set_status(task, "shutdown", "shutdown", container=cstatus)
        elif st.exit_code == 0:
            set_status(task, "complete", "finished", container=cstatus)
            task["DesiredState"] = "shutdown"
        else:
            set_status(task, "failed", "started", f"task: non-zero exit ({st.exit_code})",
                       cstatus)
            task["DesiredState"] = "shutdown"
            self._event(service, "task failed", task)
        self.records.put_task(task)

    def _may_restart(self, service: Doc, history: list[Doc]) -> bool:
        """Swarm's restart policy, over the slot's earlier tasks."""
        if not history:
            return True
        last = history[-1]
        if last["Status"]["State"] in LIVE and last["DesiredState"] == "running":
            return False
        if last["Status"]["State"] == "shutdown" and "Err" not in last["Status"]:
            return True  # stopped on purpose (an update, a scale down): refill at once
        policy = RestartPolicy.of(service["Spec"])
        failed = last["Status"]["State"] in ("failed", "rejected")
        if policy.condition == "none" or (policy.condition == "on-failure" and not failed):
            return False
        if policy.max_attempts:
            if policy.window:  # attempts within the window count (the history kept)
                attempts = len([t for t in history[1:] if age(t) <= policy.window])
            else:
                attempts = int(last.get("RestartAttempt", 0))
            if attempts >= policy.max_attempts:
                return False
        waited = age(last)
        if waited < policy.delay:
            due = time.monotonic() + policy.delay - waited
            self._next = due if self._next is None else min(self._next, due)
            return False
        return True

    def place(self, task: Doc, service: Doc, node: Doc) -> None:
        """Check the node can take the task, then create and start its container."""
        reason = unplaceable(task, node, self._reserved(task["ID"]))
        if reason:
            if set_status(task, "pending", "pending task scheduling", reason) or task["Status"]["State"] == "new":
                self.records.put_task(task)
            return
        set_status(task, "assigned", "scheduler assigned task to node")
        self.records.put_task(task)
        name = container_name(task, service["Spec"]["Name"])
        body = create_body(task, service, node["ID"])
        body["Image"] = image_name(body["Image"])
        try:
            created = self.engine.containers.create(CreateOptions(body=body, name=name))
        except PortsideError as exc:
            set_status(task, "rejected", "preparing", _reason(exc, body["Image"]))
            task["DesiredState"] = "shutdown"
            self.records.put_task(task)
            self._event(service, "task rejected", task)
            return
        set_status(task, "starting", "starting",
                   container={"ContainerID": created.id, "PID": 0, "ExitCode": 0})
        self.records.put_task(task)
        try:
            self.engine.containers.start(created.id)
        except PortsideError as exc:
            set_status(task, "failed", "starting", str(exc))
            task["DesiredState"] = "shutdown"
            self.records.put_task(task)
            return
        self.observe(task, service)

    def shutdown(self, task: Doc, service: Doc) -> None:
        """Stop a task on purpose (scale down, update): its container stops, kept as
        history."""
        task["DesiredState"] = "shutdown"
        self.records.put_task(task)
        self._balance(service)  # no new connection goes to it before it stops
        cid = task["Status"].get("ContainerStatus", {}).get("ContainerID", "")
        if cid:
            with contextlib.suppress(PortsideError):
                self.engine.containers.stop(cid, timeout=10)
        if task["Status"]["State"] in LIVE:
            set_status(task, "shutdown", "shutdown")
        self.records.put_task(task)

    def _reserved(self, except_id: str) -> tuple[int, int]:
        cpu = mem = 0
        for task in self.records.tasks():
            if task["ID"] == except_id or task["DesiredState"] != "running" or \
                    task["Status"]["State"] in ("new", "pending"):
                continue
            r = (task["Spec"].get("Resources") or {}).get("Reservations") or {}
            cpu += int(r.get("NanoCPUs") or 0)
            mem += int(r.get("MemoryBytes") or 0)
        return cpu, mem

    def _trim(self, service: Doc, slots: Any, making_room: int | None = None) -> None:
        """Keep at most the task-history limit of tasks per slot (the live one included;
        one fewer in `making_room`, the slot about to get a new task)."""
        swarm = self.records.swarm() or {}
        limit = int(((swarm.get("Spec") or {}).get("Orchestration") or {}).get(
            "TaskHistoryRetentionLimit", 5))
        by_slot: dict[int, list[Doc]] = {}
        for task in self.records.tasks(service["ID"]):
            by_slot.setdefault(int(task.get("Slot") or 0), []).append(task)
        for slot, tasks in by_slot.items():
            dead = sorted((t for t in tasks if t["DesiredState"] != "running"
                           and t["Status"]["State"] not in LIVE),
                          key=lambda t: t["CreatedAt"])
            keep = limit - (len(tasks) - len(dead)) - (slot == making_room)
            drop = dead[:max(0, len(dead) - keep)] if slot in slots else dead
            for task in drop:
                cid = task["Status"].get("ContainerStatus", {}).get("ContainerID")
                self._discard(task, cid)

    def _balance(self, service: Doc) -> None:
        if self.balancer is None:
            return
        endpoint = endpoint_of(service, self.records.tasks(service["ID"]), self.engine)
        if self._endpoints.get(service["ID"]) == endpoint:
            return
        self._endpoints[service["ID"]] = endpoint
        try:
            self.balancer.apply(endpoint)
        except PortsideError as exc:
            log.warning("load balancing of %s: %s", service["Spec"]["Name"], exc)

    def _ensure_updater(self, service_id: str) -> None:
        from portside.orchestrator.updater import Updater

        running = self.updaters.get(service_id)
        if running is not None and running.is_alive():
            return
        updater = Updater(self, service_id)
        t = threading.Thread(target=updater.run, name=f"update-{service_id[:12]}", daemon=True)
        self.updaters[service_id] = t
        t.start()

    def _event(self, service: Doc, action: str, task: Doc) -> None:
        self.publish("service", action, service["ID"],
                     {"name": service["Spec"]["Name"], "task": task["ID"],
                      "error": task["Status"].get("Err", "")})


def _reason(exc: PortsideError, image: str) -> str:
    from portside.errors import ImageUnknown

    if isinstance(exc, ImageUnknown) and not str(exc).startswith("No such image"):
        return f"No such image: {image}"
    return str(exc)
