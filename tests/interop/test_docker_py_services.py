"""docker-py's swarm models against portside's daemon: `client.swarm`, `client.nodes`,
`client.services` (create, tasks, scale, update with the version, logs, remove)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import docker
import pytest
from docker.errors import APIError, NotFound
from docker.types import EndpointSpec, RestartPolicy, ServiceMode

pytestmark = pytest.mark.interop


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def swarm(dockerpy: docker.DockerClient) -> Iterator[docker.DockerClient]:
    node_id = dockerpy.swarm.init(advertise_addr="127.0.0.1")
    assert node_id
    try:
        yield dockerpy
    finally:
        dockerpy.swarm.leave(force=True)
        wait_until(lambda: not dockerpy.api.containers(
            all=True, filters={"label": "com.docker.swarm.task.id"}), "task containers gone")


def running(service: docker.models.services.Service) -> list[dict[str, object]]:
    return [t for t in service.tasks(filters={"desired-state": "running"})
            if t["Status"]["State"] == "running"]


def test_docker_py_swarm_nodes_and_services(swarm: docker.DockerClient) -> None:
    client = swarm
    client.swarm.reload()
    assert client.swarm.attrs["Spec"]["Orchestration"]["TaskHistoryRetentionLimit"] == 5
    nodes = client.nodes.list()
    assert len(nodes) == 1 and nodes[0].attrs["Spec"]["Role"] == "manager"
    assert client.nodes.get(nodes[0].id).attrs["Status"]["State"] == "ready"

    service = client.services.create(
        "busybox", ["sh", "-c", "echo hello from $HOSTNAME; exec sleep 1000"],
        name="or-py", mode=ServiceMode("replicated", replicas=2), labels={"tier": "back"},
        restart_policy=RestartPolicy(condition="on-failure", delay=0),
        endpoint_spec=EndpointSpec(mode="vip"))
    wait_until(lambda: len(running(service)) == 2, "2 running tasks")
    assert [s.name for s in client.services.list(filters={"label": "tier=back"})] == ["or-py"]
    wait_until(lambda: client.services.list(status=True)[0].attrs["ServiceStatus"] == {
        "RunningTasks": 2, "DesiredTasks": 2, "CompletedTasks": 0}, "the service's status")
    service.reload()
    assert service.attrs["Spec"]["Labels"] == {"tier": "back"}
    assert service.attrs["Spec"]["TaskTemplate"]["RestartPolicy"]["Condition"] == "on-failure"

    wait_until(lambda: b"".join(service.logs(stdout=True)).decode().count("hello from") == 2,
               "both tasks' logs")
    lines = b"".join(service.logs(stdout=True)).decode()
    assert "com.docker.swarm.task.id=" in lines

    # a stale version is refused, the current one goes through
    version = service.attrs["Version"]["Index"]
    assert service.scale(3)
    with pytest.raises(APIError) as err:
        client.api.update_service(service.id, version, name="or-py",
                                  task_template=service.attrs["Spec"]["TaskTemplate"],
                                  mode=ServiceMode("replicated", replicas=1))
    assert err.value.status_code == 409
    wait_until(lambda: len(running(service)) == 3, "3 running tasks")

    service.remove()
    with pytest.raises(NotFound):
        client.services.get("or-py")
    wait_until(lambda: not client.api.containers(
        all=True, filters={"label": "com.docker.swarm.task.id"}), "no task containers")
