"""stack deploy converges, a re-deploy changes only what changed, stack rm takes it all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from portside.compose import stack, stackdeploy
from portside.compose.project import Options, load_project
from tests.helpers.memservices import MemNamed, MemServices

FILE = """
services:
  web: {image: "web:1", ports: ["8080:80"], deploy: {replicas: 3}, volumes: ["data:/d"],
        secrets: [pw]}
  api: {image: "api:1", networks: [back]}
networks: {back: {}}
volumes: {data: {}}
secrets: {pw: {file: ./pw.txt}}
"""


def plan_of(tmp_path: Path, text: str) -> stack.StackPlan:
    (tmp_path / "compose.yaml").write_text(text)
    (tmp_path / "pw.txt").write_text("x")
    return stack.plan(load_project(Options(files=[str(tmp_path / "compose.yaml")],
                                           project_name="shop", environ={}, stack=True)))


@pytest.fixture
def parts() -> stackdeploy.StackParts:
    return stackdeploy.StackParts(MemNamed(), MemNamed(), MemServices(),  # type: ignore[arg-type]
                                  MemNamed(), MemNamed())  # type: ignore[arg-type]


def test_deploy_redeploy_and_rm(tmp_path: Path, parts: Any) -> None:
    said: list[str] = []
    first = stackdeploy.deploy(plan_of(tmp_path, FILE), parts, said.append)
    assert sorted(first.created) == ["shop_api", "shop_web"]
    assert sorted(parts.networks.items) == ["shop_back", "shop_default"]
    assert list(parts.volumes.items) == ["shop_data"]
    assert list(parts.secrets.items) == ["shop_pw"]
    assert "Creating network shop_back" in said
    web = parts.services.inspect("shop_web")["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert web["Secrets"][0]["SecretName"] == "shop_pw"
    assert web["Secrets"][0]["SecretID"] == "shop_pw"  # resolved by name, as Docker's CLI

    again = stackdeploy.deploy(plan_of(tmp_path, FILE), parts, said.append)
    assert again.created == [] and again.updated == [] and sorted(again.unchanged) == [
        "shop_api", "shop_web"]

    changed = stackdeploy.deploy(plan_of(tmp_path, FILE.replace("api:1", "api:2")), parts,
                                 said.append)
    assert changed.updated == ["shop_api"] and changed.unchanged == ["shop_web"]
    assert parts.services.inspect("shop_api")["Version"]["Index"] == 2

    assert stackdeploy.stacks(parts.services) == {"shop": 2}
    assert stackdeploy.remove("shop", parts, said.append)
    assert parts.services.services == {} and parts.networks.items == {}
    assert parts.volumes.items == {} and parts.secrets.items == {}
    assert not stackdeploy.remove("shop", parts, said.append)


def test_prune_removes_services_gone_from_the_file(tmp_path: Path, parts: Any) -> None:
    stackdeploy.deploy(plan_of(tmp_path, FILE), parts, lambda m: None)
    slim = FILE.replace('  api: {image: "api:1", networks: [back]}\n', "")
    kept = stackdeploy.deploy(plan_of(tmp_path, slim), parts, lambda m: None)
    assert kept.removed == [] and "svc" in str(parts.services.inspect("shop_api")["ID"])
    pruned = stackdeploy.deploy(plan_of(tmp_path, slim), parts, lambda m: None, prune=True)
    assert pruned.removed == ["shop_api"]


def test_an_external_network_must_exist(tmp_path: Path, parts: Any) -> None:
    text = FILE.replace("networks: {back: {}}", "networks: {back: {external: true}}")
    with pytest.raises(stackdeploy.MissingExternal, match="network back is declared as"
                       " external"):
        stackdeploy.deploy(plan_of(tmp_path, text), parts, lambda m: None)
    assert parts.services.services == {}  # nothing half-made: services come last


def test_an_unknown_secret_name_is_one_line(parts: Any) -> None:
    spec = {"TaskTemplate": {"ContainerSpec": {"Secrets": [{"SecretName": "nope"}]}}}
    with pytest.raises(stackdeploy.UnknownObject, match="^secret not found: nope$"):
        stackdeploy.resolve_refs(spec, parts.secrets, parts.configs)


class _NoRoute(MemNamed):
    def list(self, filters: Any = None) -> list[Any]:
        from portside.errors import NotFound

        raise NotFound("page not found")


def test_secrets_on_a_daemon_without_a_store_is_one_line(tmp_path: Path) -> None:
    parts = stackdeploy.StackParts(MemNamed(), MemNamed(), MemServices(),  # type: ignore[arg-type]
                                   _NoRoute(), MemNamed())  # type: ignore[arg-type]
    with pytest.raises(stackdeploy.NoStore, match="^secret shop_pw: this daemon keeps no"
                       " secrets"):
        stackdeploy.deploy(plan_of(tmp_path, FILE), parts, lambda m: None)
    assert parts.services.services == {}
