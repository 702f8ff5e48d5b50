"""The real docker client's swarm commands against portside's daemon: `swarm init`,
`service create|ls|ps|inspect|update|rollback|scale|logs|rm`, `node ls`, with real task
containers under crun."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from helpers.daemon import PortsideDaemon

pytestmark = pytest.mark.interop


def wait_until(predicate: Callable[[], bool], what: str, daemon: PortsideDaemon,
               timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n" + daemon.log()[-3000:])
        time.sleep(0.2)


def task_containers(daemon: PortsideDaemon) -> list[str]:
    out = daemon.docker("ps", "-aq", "--filter", "label=com.docker.swarm.task.id").stdout
    return out.split()


@pytest.fixture
def swarm(daemon: PortsideDaemon) -> Iterator[PortsideDaemon]:
    """This daemon as a single-node swarm manager; at the end the swarm is left and every
    task container is gone (before the daemon fixture cleans up)."""
    out = daemon.docker("swarm", "init", "--advertise-addr", "127.0.0.1").stdout
    assert "Swarm initialized: current node" in out and "is now a manager" in out
    try:
        yield daemon
    finally:
        daemon.docker("swarm", "leave", "--force", check=False)
        wait_until(lambda: not task_containers(daemon), "task containers gone", daemon)


def tasks(daemon: PortsideDaemon, service: str, *extra: str) -> list[dict[str, Any]]:
    out = daemon.docker("service", "ps", "--no-trunc", "--format", "json", *extra,
                        service).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def running(daemon: PortsideDaemon, service: str) -> list[dict[str, Any]]:
    return [t for t in tasks(daemon, service, "--filter", "desired-state=running")
            if t["CurrentState"].startswith("Running")]


def inspect(daemon: PortsideDaemon, service: str) -> dict[str, Any]:
    doc: list[dict[str, Any]] = json.loads(daemon.docker("service", "inspect", service).stdout)
    return doc[0]


def test_swarm_init_node_ls_and_leave(daemon: PortsideDaemon) -> None:
    r = daemon.docker("swarm", "leave", "--force", check=False)
    assert r.returncode != 0 and "not part of a swarm" in r.stderr
    r = daemon.docker("service", "ls", check=False)
    assert r.returncode != 0 and "not a swarm manager" in r.stderr
    daemon.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    nodes = [json.loads(line) for line in
             daemon.docker("node", "ls", "--format", "json").stdout.splitlines()]
    assert len(nodes) == 1
    assert nodes[0]["Self"] is True and nodes[0]["ManagerStatus"] == "Leader"
    assert nodes[0]["Status"] == "Ready" and nodes[0]["Availability"] == "Active"
    info = json.loads(daemon.docker("info", "--format", "{{json .Swarm}}").stdout)
    assert info["LocalNodeState"] == "active" and info["ControlAvailable"] is True
    r = daemon.docker("swarm", "init", check=False)
    assert r.returncode != 0 and "already part of a swarm" in r.stderr
    daemon.docker("swarm", "leave", "--force")
    info = json.loads(daemon.docker("info", "--format", "{{json .Swarm}}").stdout)
    assert info["LocalNodeState"] == "inactive"


def test_service_replicas_self_heal_scale_and_rm(swarm: PortsideDaemon) -> None:
    d = swarm
    out = d.docker("service", "create", "--detach", "--name", "or-sleep", "--replicas", "2",
                   "--restart-delay", "0s", "busybox", "sleep", "1000").stdout
    sid = out.strip().splitlines()[-1]
    wait_until(lambda: len(running(d, "or-sleep")) == 2, "2 running tasks", d)
    ls = json.loads(d.docker("service", "ls", "--format", "json").stdout)
    assert ls["Name"] == "or-sleep" and ls["Replicas"] == "2/2" and ls["Mode"] == "replicated"
    names = d.docker("ps", "--format", "{{.Names}}").stdout.split()
    assert sorted(n.rsplit(".", 1)[0] for n in names) == ["or-sleep.1", "or-sleep.2"]
    first = d.docker("ps", "-q", "--no-trunc", "--filter", "name=or-sleep.1.").stdout.split()
    labels = json.loads(d.docker("inspect", "--format", "{{json .Config.Labels}}",
                                 first[0]).stdout)
    assert labels["com.docker.swarm.service.id"] == sid
    assert labels["com.docker.swarm.service.name"] == "or-sleep"

    # a task whose container dies is replaced; the dead one stays in the history
    d.docker("kill", first[0])
    wait_until(lambda: len(running(d, "or-sleep")) == 2
               and len(tasks(d, "or-sleep")) == 3, "a replacement task", d)
    failed = [t for t in tasks(d, "or-sleep") if t["DesiredState"] == "Shutdown"]
    assert failed[0]["Name"] == "or-sleep.1"
    assert "task: non-zero exit (137)" in failed[0]["Error"]

    d.docker("service", "scale", "--detach", "or-sleep=3")
    wait_until(lambda: len(running(d, "or-sleep")) == 3, "3 running tasks", d)
    d.docker("service", "scale", "--detach", "or-sleep=1")
    wait_until(lambda: len(running(d, "or-sleep")) == 1, "1 running task", d)
    assert len(d.docker("ps", "-q").stdout.split()) == 1

    d.docker("service", "rm", "or-sleep")
    wait_until(lambda: not task_containers(d), "no task containers", d)
    assert d.docker("service", "ls", "-q").stdout.strip() == ""


def test_missing_image_and_unplaceable_tasks_say_why(swarm: PortsideDaemon) -> None:
    d = swarm
    d.docker("service", "create", "--detach", "--no-resolve-image", "--name", "or-noimg",
             "or-nosuch:1", check=False)
    wait_until(lambda: any("No such image: or-nosuch:1" in t["Error"]
                           for t in tasks(d, "or-noimg")), "a rejected task", d)
    d.docker("service", "create", "--detach", "--name", "or-big", "--reserve-memory",
             "100000g", "busybox", "sleep", "100")
    wait_until(lambda: any("insufficient resources on 1 node" in t["Error"]
                           for t in tasks(d, "or-big")), "a pending task", d)
    assert tasks(d, "or-big")[0]["CurrentState"].startswith("Pending")
    d.docker("service", "create", "--detach", "--name", "or-where", "--constraint",
             "node.labels.zone==moon", "busybox", "sleep", "100")
    wait_until(lambda: any("scheduling constraints not satisfied" in t["Error"]
                           for t in tasks(d, "or-where")), "a constrained task", d)
    d.docker("service", "create", "--detach", "--name", "or-mgr", "--constraint",
             "node.role==manager", "--mode", "global", "busybox", "sleep", "100")
    wait_until(lambda: len(running(d, "or-mgr")) == 1, "the global task", d)
    assert not task_containers(d)[1:]  # only or-mgr's task has a container
