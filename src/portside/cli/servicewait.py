"""Waiting for a service to converge after `create`, `update`, `scale` or `rollback`.

Docker's CLI follows the tasks and the UpdateStatus until the service is where the spec
says; it exits 0 even when the daemon rolled an update back. portside exits non-zero
then (`UpdateFailed`), so a script or CI notices a failed release.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from portside.engine.interface import Document, doc_at, int_at, str_at
from portside.errors import PortsideError
from portside.orchestrator.interface import ServicesAPI

POLL = 0.25
SETTLED = ("completed", "paused", "rollback_completed", "rollback_paused")


class UpdateFailed(PortsideError):
    """The update did not reach its spec: paused, or rolled back (exit 1)."""

    def __init__(self, service: str, state: str, message: str) -> None:
        super().__init__(f"service {service}: update {state.replace('_', ' ')}"
                         + (f": {message}" if message else ""))
        self.service, self.state = service, state


def desired(service: Document, nodes: int) -> int:
    if "Global" in doc_at(service, "Spec", "Mode"):
        return nodes
    return int_at(service, "Spec", "Mode", "Replicated", "Replicas")


def running(tasks: list[Document], image: str = "") -> int:
    """Tasks meant to run that do run (one per slot, as Swarm counts replicas); with
    `image`, only those of that image (an update's new tasks)."""
    return sum(1 for t in tasks if str_at(t, "DesiredState") == "running"
               and str_at(t, "Status", "State") == "running"
               and (not image or str_at(t, "Spec", "ContainerSpec", "Image") == image))


def last_error(tasks: list[Document]) -> str:
    """The error of the most recently updated task that has one."""
    failed = [t for t in tasks if str_at(t, "Status", "Err")]
    if not failed:
        return ""
    newest = max(failed, key=lambda t: str_at(t, "Status", "Timestamp"))
    return str_at(newest, "Status", "Err")


def wait(services: ServicesAPI, ref: str, nodes: int, before: Document | None,
         report: Callable[[str], None], rollback: bool = False) -> Document:
    """Follow `ref` until its tasks run as specified and any update it started settled.
    `before` is the service as it was before the change (None for a create): an
    UpdateStatus that differs from its one is this change's. Raises UpdateFailed."""
    old_status = doc_at(before, "UpdateStatus") if before else {}
    last = ""
    while True:
        service = services.inspect(ref)
        status = doc_at(service, "UpdateStatus")
        ours = bool(status) and status != old_status
        state = str_at(status, "State") if ours else ""
        if state in ("paused", "rollback_paused"):  # stopped: nothing more will converge
            raise UpdateFailed(str_at(service, "Spec", "Name"), state,
                               str_at(status, "Message"))
        tasks = services.tasks({"service": [str_at(service, "ID")]})
        image = str_at(service, "Spec", "TaskTemplate", "ContainerSpec", "Image")
        want, have = desired(service, nodes), running(tasks, image)
        line = f"overall progress: {have} out of {want} tasks" + (
            f" ({state.replace('_', ' ')})" if state else "")
        if have < want and (err := last_error(tasks)):
            line += f"; last task error: {err}"  # e.g. No such image, as `service ps` shows
        if line != last:
            report(line)
            last = line
        if have == want and (not ours or state in SETTLED):
            if state == "rollback_completed" and not rollback:  # the old version runs again
                raise UpdateFailed(str_at(service, "Spec", "Name"), state,
                                   str_at(status, "Message"))
            return service
        time.sleep(POLL)
