"""The orchestrator's pure parts: records with compare-and-swap versions, spec checks and
Swarm's defaults, placement's constraints and reservations."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portside.errors import Conflict, InvalidArgument
from portside.orchestrator.placement import check_constraints, satisfies, unplaceable
from portside.orchestrator.records import NoSuchService, Records, StaleVersion, new_id
from portside.orchestrator.spec import RestartPolicy, UpdatePolicy, normalise_spec, replicas
from portside.state.memory import MemoryBackend

NODE = {"ID": "n1", "Spec": {"Role": "manager", "Labels": {"zone": "eu"}},
        "Description": {"Hostname": "h", "Platform": {"OS": "linux", "Architecture": "x86_64"},
                        "Resources": {"NanoCPUs": 2 * 10**9, "MemoryBytes": 2 << 30}}}


@pytest.fixture
def records() -> Iterator[Records]:
    backend = MemoryBackend()
    try:
        yield Records(backend)
    finally:
        backend.close()


def spec(name: str = "web", **extra: object) -> dict[str, object]:
    return {"Name": name, "TaskTemplate": {"ContainerSpec": {"Image": "busybox"}}, **extra}


def test_version_index_is_the_revision_and_guards_updates(records: Records) -> None:
    doc = {"ID": new_id(), "Spec": normalise_spec(spec())}
    records.create_service(doc)
    got = records.service("web")
    version = got["Version"]["Index"]
    assert version == records.backend.revision()
    assert records.service(got["ID"][:5])["ID"] == got["ID"]
    got["Spec"]["Labels"] = {"a": "b"}
    newer = records.swap_service(got, version)
    assert newer > version and records.service("web")["Version"]["Index"] == newer
    with pytest.raises(StaleVersion) as err:
        records.swap_service(got, version)
    assert err.value.http_status == 409
    with pytest.raises(Conflict):
        records.create_service({"ID": new_id(), "Spec": normalise_spec(spec())})
    with pytest.raises(NoSuchService):
        records.service("nope")
    records.delete_service(got["ID"])  # the name is free again
    records.create_service({"ID": new_id(), "Spec": normalise_spec(spec())})


def test_spec_defaults_and_refusals() -> None:
    s = normalise_spec(spec())
    assert s["Mode"] == {"Replicated": {"Replicas": 1}} and replicas(s) == 1
    assert replicas(normalise_spec(spec(Mode={"global": {}}))) is None
    assert replicas(normalise_spec(spec(Mode={"replicated": {"Replicas": 4}}))) == 4
    policy = RestartPolicy.of(s)
    assert (policy.condition, policy.delay, policy.max_attempts) == ("any", 5.0, 0)
    update = UpdatePolicy.of(s)
    assert (update.parallelism, update.order, update.failure_action, update.monitor) == (
        1, "stop-first", "pause", 5.0)
    for bad in (spec("-x"), spec(TaskTemplate={}), spec(Mode={"Replicated": {"Replicas": -1}}),
                spec(UpdateConfig={"Order": "sideways"}),
                spec(RollbackConfig={"FailureAction": "rollback"})):
        with pytest.raises(InvalidArgument):
            normalise_spec(bad)


def test_constraints_on_the_node() -> None:
    assert satisfies(NODE, ["node.role==manager", "node.labels.zone==eu"])
    assert satisfies(NODE, ["node.role!=worker", "node.labels.disk!=ssd"])
    assert not satisfies(NODE, ["node.labels.zone==us"])
    assert not satisfies(NODE, ["node.labels.nope==x"])
    with pytest.raises(InvalidArgument):
        check_constraints(["node.role=manager"])


@given(st.text(max_size=40))
def test_any_constraint_text_is_answered_without_error(text: str) -> None:
    assert satisfies(NODE, [text]) in (True, False)


def test_reservations_against_the_node() -> None:
    task = {"Spec": {"Resources": {"Reservations": {"NanoCPUs": 10**9}}}}
    assert unplaceable(task, NODE, (0, 0)) == ""
    assert unplaceable(task, NODE, (15 * 10**8, 0)) == (
        "no suitable node (insufficient resources on 1 node)")
    task = {"Spec": {"Placement": {"Constraints": ["node.role==worker"]}}}
    assert "scheduling constraints not satisfied on 1 node" in unplaceable(task, NODE, (0, 0))
