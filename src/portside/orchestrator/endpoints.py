"""What the service balancer is told of a service: its networks (by ID), ingress ports and
the addresses of its running tasks with their health."""

from __future__ import annotations

from typing import Any

from portside.engine.interface import EngineAPI, doc_at, str_at
from portside.errors import PortsideError
from portside.network.balancer import Backend, ServiceEndpoint, ServicePort
from portside.orchestrator.records import Doc


def endpoint_of(service: Doc, tasks: list[Doc], engine: EngineAPI) -> ServiceEndpoint:
    spec = service["Spec"]
    networks = []
    # tasks without a network of their own are on the default bridge (Swarm: ingress)
    for n in spec["TaskTemplate"].get("Networks") or [{"Target": "bridge"}]:
        try:
            networks.append(str_at(engine.networks.inspect(n["Target"]), "Id"))
        except PortsideError:
            continue  # removed meanwhile: its tasks have no address there either
    backends = []
    for task in tasks:
        if task["DesiredState"] != "running" or task["Status"]["State"] != "running":
            continue
        cid = task["Status"]["ContainerStatus"]["ContainerID"]
        try:
            doc = engine.containers.inspect(cid)
            health = engine.containers.state(cid).health
        except PortsideError:
            continue
        settings: dict[str, Any] = dict(doc_at(doc, "NetworkSettings"))
        attached: dict[str, Any] = settings.get("Networks") or {}
        for ep in attached.values():
            if ep.get("IPAddress") and ep.get("NetworkID") in networks:
                backends.append(Backend(task["ID"], str(ep["NetworkID"]),
                                        str(ep["IPAddress"]), health in ("", "healthy")))
    endpoint_spec = spec.get("EndpointSpec") or {}
    ports = [ServicePort(int(p["TargetPort"]), p.get("Protocol", "tcp"), p.get("PublishedPort"),
                         p.get("PublishMode") or "ingress")
             for p in endpoint_spec.get("Ports") or []]
    return ServiceEndpoint(service["ID"], spec["Name"], networks,
                           endpoint_spec.get("Mode", "vip"), ports, backends)
