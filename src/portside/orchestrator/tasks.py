"""A task and its container: the container's create body, name and labels as Swarm's.

A task container is named `<service>.<slot>.<task id>` (`<service>.<node id>.<task id>`
in global mode) and carries Swarm's labels, so `docker ps` shows what `docker service ps`
does and the reconciler can find its containers again after a daemon restart.
"""

from __future__ import annotations

import time
from typing import Any

from portside.orchestrator.records import Doc, new_id, now

TASK_LABEL = "com.docker.swarm.task.id"
SERVICE_LABEL = "com.docker.swarm.service.id"

LIVE = ("new", "pending", "assigned", "accepted", "preparing", "starting", "running")
DONE = ("complete", "shutdown", "failed", "rejected", "remove", "orphaned")


def new_task(service: Doc, slot: int, node_id: str) -> Doc:
    stamp = now()
    spec = service["Spec"]
    doc: Doc = {
        "ID": new_id(), "CreatedAt": stamp, "UpdatedAt": stamp,
        "Labels": {}, "Spec": spec["TaskTemplate"], "ServiceID": service["ID"],
        "NodeID": node_id,
        "Status": {"Timestamp": stamp, "State": "new", "Message": "created"},
        "DesiredState": "running",
        "ServiceAnnotations": {"Name": spec["Name"]},
    }
    if slot:
        doc["Slot"] = slot
    return doc


def container_name(task: Doc, service_name: str) -> str:
    return f"{service_name}.{task.get('Slot') or task['NodeID']}.{task['ID']}"


def set_status(task: Doc, state: str, message: str, err: str = "",
               container: dict[str, Any] | None = None) -> bool:
    """Record a new status; whether anything changed (so an idle pass writes nothing)."""
    status = task["Status"]
    before = (status.get("State"), status.get("Message"), status.get("Err", ""),
              status.get("ContainerStatus"))
    status.update(State=state, Message=message)
    if err:
        status["Err"] = err
    else:
        status.pop("Err", None)
    if container is not None:
        status["ContainerStatus"] = container
    if before == (state, message, err, status.get("ContainerStatus")):
        return False
    status["Timestamp"] = task["UpdatedAt"] = now()
    return True


def age(task: Doc) -> float:
    """Seconds since the task's status last changed."""
    from portside.times import parse_rfc3339

    return time.time() - parse_rfc3339(task["Status"]["Timestamp"])


def create_body(task: Doc, service: Doc, node_id: str) -> Doc:
    """Docker's container create body for the task's ContainerSpec."""
    spec = service["Spec"]
    cs = task["Spec"]["ContainerSpec"]
    resources = task["Spec"].get("Resources") or {}
    limits = resources.get("Limits") or {}
    labels = {**(cs.get("Labels") or {}),
              SERVICE_LABEL: service["ID"], "com.docker.swarm.service.name": spec["Name"],
              TASK_LABEL: task["ID"], "com.docker.swarm.task": "",
              "com.docker.swarm.task.name": f"{spec['Name']}.{task.get('Slot') or node_id}"
                                             f".{task['ID']}",
              "com.docker.swarm.node.id": node_id}
    host: Doc = {"Mounts": [_mount(m) for m in cs.get("Mounts") or []],
                 "RestartPolicy": {"Name": "no"}, "Init": cs.get("Init"),
                 "CapAdd": cs.get("CapabilityAdd"), "CapDrop": cs.get("CapabilityDrop")}
    if limits.get("NanoCPUs"):
        host["NanoCpus"] = int(limits["NanoCPUs"])
    if limits.get("MemoryBytes"):
        host["Memory"] = int(limits["MemoryBytes"])
    if limits.get("Pids"):
        host["PidsLimit"] = int(limits["Pids"])
    networks = task["Spec"].get("Networks") or spec.get("Networks") or []
    endpoints = {n["Target"]: {"Aliases": [spec["Name"], *(n.get("Aliases") or [])]}
                 for n in networks}
    if networks:
        host["NetworkMode"] = networks[0]["Target"]
    body: Doc = {"Image": cs["Image"], "Env": cs.get("Env") or [], "Labels": labels,
                 "HostConfig": {k: v for k, v in host.items() if v is not None},
                 "NetworkingConfig": {"EndpointsConfig": endpoints}}
    if cs.get("Command"):
        body["Entrypoint"] = cs["Command"]
    if cs.get("Args"):
        body["Cmd"] = cs["Args"]
    for ours, docker in (("Dir", "WorkingDir"), ("User", "User"), ("Hostname", "Hostname"),
                         ("StopSignal", "StopSignal"), ("TTY", "Tty"),
                         ("OpenStdin", "OpenStdin"), ("Healthcheck", "Healthcheck")):
        if cs.get(ours):
            body[docker] = cs[ours]
    return body


def _mount(m: Doc) -> Doc:
    out: Doc = {"Type": m.get("Type", "volume"), "Source": m.get("Source", ""),
                "Target": m["Target"], "ReadOnly": bool(m.get("ReadOnly"))}
    for key in ("BindOptions", "VolumeOptions", "TmpfsOptions"):
        if m.get(key):
            out[key] = m[key]
    return out


def image_name(image: str) -> str:
    """The image a container starts from: the docker client pins `name:tag@digest` when it
    could resolve one; the tag is what the local store knows."""
    return image.split("@", 1)[0] if "@" in image and ":" in image.split("@", 1)[0].rsplit(
        "/", 1)[-1] else image
