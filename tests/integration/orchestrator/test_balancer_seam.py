"""The orchestrator's side of the service balancer's seam, with real task containers: the
reconciler tells the balancer each running task's address on the service's network (by
the network's ID) and forgets the service when it is removed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from helpers.busybox import busybox_image
from helpers.daemon import PortsideDaemon

from portside.engine.interface import NetworkCreate
from portside.engine.local import LocalEngine
from portside.network.balancer import ServiceEndpoint
from portside.orchestrator.logs import ServiceLogs
from portside.orchestrator.reconciler import Reconciler
from portside.orchestrator.records import Records
from portside.orchestrator.services import Services, Swarm
from portside.store.images import ImageStore


class RecordingBalancer:
    """A ServiceBalancer that keeps what it is told (the kernel side is servicelb's)."""

    def __init__(self) -> None:
        self.applied: list[ServiceEndpoint] = []
        self.removed: list[str] = []
        self.lock = threading.Lock()

    def apply(self, endpoint: ServiceEndpoint) -> dict[str, str]:
        with self.lock:
            self.applied.append(endpoint)
        return {}

    def remove(self, service_id: str) -> None:
        with self.lock:
            self.removed.append(service_id)

    def restore(self) -> None:
        return None


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_running_tasks_addresses_reach_the_balancer(root: Path, store: ImageStore) -> None:
    busybox_image(store)
    leftovers = PortsideDaemon(root)  # never started: only its cleanup
    balancer = RecordingBalancer()
    try:
        with LocalEngine.open(root) as local:
            backend = local.engine.state.backend
            records = Records(backend)
            publish = local.engine.events.publish
            reconciler = Reconciler(records, backend, local, publish, balancer, period=1.0)
            swarm = Swarm(records, local, publish, reconciler.wake)
            services = Services(records, swarm, ServiceLogs(records, local), publish,
                                reconciler.wake)
            swarm.init({})
            net_id = local.networks.create(NetworkCreate(name="or-lb"))
            reconciler.start()
            try:
                sid, _ = services.create({
                    "Name": "or-lb-web", "Mode": {"Replicated": {"Replicas": 2}},
                    "TaskTemplate": {"ContainerSpec": {"Image": "busybox",
                                                       "Args": ["sleep", "1000"]},
                                     "Networks": [{"Target": "or-lb"}]}})

                def two_backends() -> bool:
                    with balancer.lock:
                        last = balancer.applied[-1] if balancer.applied else None
                    return last is not None and len(last.backends) == 2

                wait_until(two_backends, "two backends")
                last = balancer.applied[-1]
                assert last.service_id == sid and last.name == "or-lb-web"
                assert list(last.networks) == [net_id]
                addresses = set()
                for s in local.containers.list(filters={"label": [
                        f"com.docker.swarm.service.id={sid}"]}):
                    doc = local.containers.inspect(s.id)
                    addresses.add(doc["NetworkSettings"]["Networks"]["or-lb"]["IPAddress"])
                assert {b.address for b in last.backends} == addresses
                assert all(b.network == net_id and b.healthy for b in last.backends)

                services.remove(sid)
                wait_until(lambda: sid in balancer.removed, "the service forgotten")
                wait_until(lambda: not local.containers.list(all=True, filters={
                    "label": ["com.docker.swarm.task.id"]}), "no task containers")
            finally:
                reconciler.stop()
                local.networks.remove("or-lb")
    finally:
        leftovers.cleanup()
