"""The orchestrator as a daemon extension: the swarm routes, the reconciler's thread, and
the engine's per-container managed mode for task containers.

The engine drives task containers through `LocalEngine` (the engine interface in this
process), from the reconciler's threads; the engine tells the reconciler when a task
container exits (its `ExitReporter`) or changes health (its event bus).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from portside.network.balancer import ServiceBalancer
from portside.orchestrator.records import Records
from portside.orchestrator.tasks import TASK_LABEL

if TYPE_CHECKING:
    from aiohttp import web

    from portside.engine.containers import Engine


class OrchestratorExtension:
    """`install` it on the daemon's app; `balancer` spreads service traffic (the root's
    kernel balancer, `engine.networks.balancer()`, unless another is given)."""

    def __init__(self, balancer: ServiceBalancer | None = None) -> None:
        self.balancer = balancer

    def install(self, app: web.Application, engine: Engine) -> None:
        from portside.engine.local import LocalEngine
        from portside.orchestrator.api import add_routes
        from portside.orchestrator.logs import ServiceLogs
        from portside.orchestrator.reconciler import Reconciler
        from portside.orchestrator.services import Services, Swarm

        loop = asyncio.get_running_loop()
        local = LocalEngine(engine, loop)
        backend = engine.state.backend
        records = Records(backend)
        publish = engine.events.publish
        balancer = self.balancer if self.balancer is not None else engine.networks.balancer()
        reconciler = Reconciler(records, backend, local, publish, balancer)
        swarm = Swarm(records, local, publish, reconciler.wake)
        services = Services(records, swarm, ServiceLogs(records, local), publish,
                            reconciler.wake)
        add_routes(app, swarm, services)
        engine.info_parts.append(lambda: {"Swarm": swarm_info(records)})
        engine.managed_label = TASK_LABEL
        engine.exits = reconciler.wake

        async def start(_: web.Application) -> None:
            await asyncio.to_thread(balancer.restore)
            reconciler.start()
            app["orchestrator.health"] = loop.create_task(_health_wakes(engine, reconciler))

        async def stop(_: web.Application) -> None:
            app["orchestrator.health"].cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await app["orchestrator.health"]
            await asyncio.to_thread(reconciler.stop)

        app.on_startup.append(start)
        app.on_cleanup.append(stop)


async def _health_wakes(engine: Engine, reconciler: Any) -> None:
    """A task container's health changed or it started: a pass looks at it at once."""
    q = engine.events.subscribe()
    try:
        while True:
            event = await q.get()
            attrs = event.get("Actor", {}).get("Attributes", {})
            if event.get("Type") == "container" and TASK_LABEL in attrs:
                reconciler.wake()
    finally:
        engine.events.unsubscribe(q)


def swarm_info(records: Records) -> dict[str, Any]:
    """`/info`'s Swarm section."""
    node = records.node()
    if node is None:
        return {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                "ControlAvailable": False, "Error": "", "RemoteManagers": None}
    addr = node["Status"]["Addr"]
    swarm = records.swarm() or {}
    return {"NodeID": node["ID"], "NodeAddr": addr, "LocalNodeState": "active",
            "ControlAvailable": True, "Error": "",
            "RemoteManagers": [{"NodeID": node["ID"], "Addr": f"{addr}:2377"}],
            "Nodes": 1, "Managers": 1, "Cluster": swarm}
