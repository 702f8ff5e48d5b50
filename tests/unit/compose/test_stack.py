"""A compose file as a stack: the ServiceSpecs and resources Docker's `stack deploy` makes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from portside.compose import stack
from portside.compose.errors import ComposeError
from portside.compose.project import Options, load_project

FILE = """
services:
  web:
    image: 127.0.0.1:5000/shop/web:1
    command: ["httpd", "-f"]
    environment: {B: "2", A: "1"}
    ports: ["8080:80"]
    networks: [front]
    volumes: ["data:/data"]
    secrets: [db]
    healthcheck: {test: "wget -qO- localhost/health", interval: 2s, retries: 3}
    depends_on: [api]
    container_name: web
    deploy:
      mode: replicated
      replicas: 3
      endpoint_mode: vip
      labels: {tier: front}
      update_config: {parallelism: 1, delay: 2s, order: start-first, failure_action: rollback,
                      monitor: 5s, max_failure_ratio: 0}
      rollback_config: {parallelism: 2}
      restart_policy: {condition: on-failure, max_attempts: 5, delay: 1s}
      resources:
        limits: {memory: 64m, cpus: "0.5"}
        reservations: {cpus: "0.1"}
      placement: {constraints: ["node.role==manager"]}
  api:
    image: api:1
    restart: always
    deploy: {mode: global}
networks:
  front: {}
volumes:
  data: {}
secrets:
  db: {file: ./db.txt}
"""


def plan_of(tmp_path: Path, text: str = FILE, warn: Any = None) -> stack.StackPlan:
    (tmp_path / "compose.yaml").write_text(text)
    (tmp_path / "db.txt").write_text("s3cret")
    warnings: list[str] = [] if warn is None else warn
    project = load_project(Options(files=[str(tmp_path / "compose.yaml")],
                                   project_name="shop", environ={}, warn=warnings.append,
                                   stack=True))
    return stack.plan(project, warnings.append)


def test_services_are_dockers_specs(tmp_path: Path) -> None:
    plan = plan_of(tmp_path)
    web = plan.services["shop_web"]
    assert web["Labels"]["com.docker.stack.namespace"] == "shop"
    assert web["Labels"]["com.docker.stack.image"] == "127.0.0.1:5000/shop/web:1"
    assert web["Labels"]["tier"] == "front"
    assert web["Mode"] == {"Replicated": {"Replicas": 3}}
    cs = web["TaskTemplate"]["ContainerSpec"]
    assert cs["Args"] == ["httpd", "-f"]
    assert cs["Env"] == ["A=1", "B=2"]
    assert cs["Labels"] == {"com.docker.stack.namespace": "shop"}
    assert cs["Mounts"] == [{"Type": "volume", "Target": "/data", "Source": "shop_data",
                             "VolumeOptions": {"Labels": {"com.docker.stack.namespace": "shop"}}}]
    assert cs["Secrets"] == [{"File": {"Name": "db", "UID": "0", "GID": "0", "Mode": 0o444},
                              "SecretName": "shop_db"}]
    assert cs["Healthcheck"] == {"Test": ["CMD-SHELL", "wget -qO- localhost/health"],
                                 "Interval": 2 * 10**9, "Retries": 3}
    assert web["TaskTemplate"]["Networks"] == [{"Target": "shop_front", "Aliases": ["web"]}]
    assert web["TaskTemplate"]["RestartPolicy"] == {"Condition": "on-failure",
                                                    "Delay": 10**9, "MaxAttempts": 5}
    assert web["TaskTemplate"]["Resources"] == {
        "Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 64 << 20},
        "Reservations": {"NanoCPUs": 100_000_000}}
    assert web["TaskTemplate"]["Placement"] == {"Constraints": ["node.role==manager"]}
    assert web["UpdateConfig"] == {"Parallelism": 1, "Delay": 2 * 10**9, "Monitor": 5 * 10**9,
                                   "FailureAction": "rollback", "Order": "start-first",
                                   "MaxFailureRatio": 0.0}
    assert web["RollbackConfig"] == {"Parallelism": 2}
    assert web["EndpointSpec"] == {"Mode": "vip", "Ports": [
        {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"}]}


def test_restart_becomes_the_restart_policy_and_global_mode(tmp_path: Path) -> None:
    api = plan_of(tmp_path).services["shop_api"]
    assert api["Mode"] == {"Global": {}}
    assert api["TaskTemplate"]["RestartPolicy"] == {"Condition": "any"}
    assert api["TaskTemplate"]["Networks"] == [{"Target": "shop_default", "Aliases": ["api"]}]


def test_resources_carry_the_namespace_label(tmp_path: Path) -> None:
    plan = plan_of(tmp_path)
    assert [n.name for n in plan.networks] == ["shop_default", "shop_front"]
    assert all(n.body["Labels"] == {"com.docker.stack.namespace": "shop"} for n in plan.networks)
    assert [v.name for v in plan.volumes] == ["shop_data"]
    assert plan.secrets[0].name == "shop_db" and plan.secrets[0].body["Data"] == b"s3cret"


def test_ignored_keys_are_one_warning_each(tmp_path: Path) -> None:
    warnings: list[str] = []
    plan_of(tmp_path, warn=warnings)
    ignored = [w for w in warnings if "stack deploy" in w]
    assert ignored == [
        "services.web.container_name: not applied by stack deploy (Swarm starts each service"
        " on its own); ignored",
        "services.web.depends_on: not applied by stack deploy (Swarm starts each service on"
        " its own); ignored"]


def test_the_hash_changes_only_with_the_service(tmp_path: Path) -> None:
    first = plan_of(tmp_path)
    second = plan_of(tmp_path, FILE.replace("image: api:1", "image: api:2"))
    label = stack.HASH_LABEL
    assert first.services["shop_web"]["Labels"][label] == \
        second.services["shop_web"]["Labels"][label]
    assert first.services["shop_api"]["Labels"][label] != \
        second.services["shop_api"]["Labels"][label]


@pytest.mark.parametrize(("bad", "where"), [
    ("mode: replicated\n", "mode: sometimes\n"),
    ("order: start-first", "order: sideways"),
    ("parallelism: 2", "parallelism: two"),
])
def test_a_bad_deploy_section_is_one_line_naming_the_key(tmp_path: Path, bad: str,
                                                        where: str) -> None:
    with pytest.raises(ComposeError) as info:
        plan_of(tmp_path, FILE.replace(bad, where))
    assert "services.web.deploy" in str(info.value) and "\n" not in str(info.value)


def test_a_service_without_an_image_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ComposeError, match="services.b: stack deploy needs an image"):
        plan_of(tmp_path, "services:\n  b:\n    build: .\n")
