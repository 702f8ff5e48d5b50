"""A service replica as a Docker API create body (what Docker Compose would send)."""

from __future__ import annotations

from pathlib import Path

import pytest

from portside.compose import containerspec, naming
from portside.compose.model import Project
from portside.compose.project import Options, load_project

APP = """
name: shop
services:
  web:
    image: busybox
    command: ["httpd", "-f"]
    entrypoint: /bin/sh -c
    environment: {A: "1", UNSET_ONE: null}
    ports: ["127.0.0.1:8080:80", "9000-9001:90-91/udp"]
    expose: ["3000"]
    volumes: ["data:/data:ro", "./html:/www", {type: tmpfs, target: /scratch, tmpfs: {size: 1m}}]
    tmpfs: ["/run:size=64k"]
    networks:
      back: {aliases: [api], ipv4_address: 10.230.9.10}
      front: {priority: 10}
    depends_on: [db]
    healthcheck: {test: "wget -q localhost", interval: 2s, retries: 3}
    restart: on-failure:3
    init: true
    user: "1000"
    working_dir: /www
    read_only: true
    cap_drop: [ALL]
    stop_signal: SIGINT
    stop_grace_period: 5s
    extra_hosts: ["gw:10.0.0.1"]
    ulimits: {nofile: 1024}
    mem_limit: 64m
    cpus: 0.5
    secrets: [pw]
    labels: {tier: front}
  db:
    image: busybox
    network_mode: none
networks: {back: {}, front: {}}
volumes: {data: {}}
secrets: {pw: {content: x}}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    (tmp_path / "compose.yaml").write_text(APP.replace("secrets: {pw: {content: x}}",
                                                       "secrets: {pw: {environment: PW}}"))
    monkeypatch.chdir(tmp_path)
    return load_project(Options(environ={"PW": "x"}))


def test_create_body(project: Project, tmp_path: Path) -> None:
    web = project.services["web"]
    body = containerspec.create_body(project, web, 2, "busybox",
                                     tmp_path / "run", image_id="sha256:abc")
    assert body["Cmd"] == ["httpd", "-f"] and body["Entrypoint"] == ["/bin/sh", "-c"]
    assert body["Env"] == ["A=1"]
    assert body["Labels"]["tier"] == "front"
    assert body["Labels"][naming.NUMBER] == "2"
    assert body["Labels"][naming.IMAGE] == "sha256:abc"
    assert body["Labels"][naming.DEPENDS_ON] == "db:service_started:false"
    host = body["HostConfig"]
    assert host["PortBindings"] == {
        "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
        "90/udp": [{"HostIp": "", "HostPort": "9000"}],
        "91/udp": [{"HostIp": "", "HostPort": "9001"}]}
    assert set(body["ExposedPorts"]) == {"80/tcp", "90/udp", "91/udp", "3000/tcp"}
    assert host["Mounts"] == [
        {"Type": "volume", "Target": "/data", "Source": "shop_data", "ReadOnly": True},
        {"Type": "bind", "Target": "/www", "Source": str(tmp_path / "html")},
        {"Type": "tmpfs", "Target": "/scratch", "TmpfsOptions": {"SizeBytes": 1 << 20}},
        {"Type": "bind", "Source": str(tmp_path / "run" / "secrets" / "web" / "pw"),
         "Target": "/run/secrets/pw", "ReadOnly": True}]
    assert host["Tmpfs"] == {"/run": "size=64k"}
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert host["NetworkMode"] == "shop_front"  # the highest priority network first
    assert body["NetworkingConfig"] == {"EndpointsConfig": {
        "shop_front": {"Aliases": ["web"]},
        "shop_back": {"Aliases": ["web", "api"], "IPAMConfig": {"IPv4Address": "10.230.9.10"}}}}
    assert (host["Init"], host["ReadonlyRootfs"], host["CapDrop"]) == (True, True, ["ALL"])
    assert host["ExtraHosts"] == ["gw:10.0.0.1"]
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 1024}]
    assert (host["Memory"], host["NanoCpus"]) == (64 << 20, 500_000_000)
    assert (body["User"], body["WorkingDir"], body["StopSignal"], body["StopTimeout"]) == (
        "1000", "/www", "SIGINT", 5)
    assert body["Healthcheck"] == {"Test": ["CMD-SHELL", "wget -q localhost"],
                                   "Interval": 2_000_000_000, "Retries": 3}


def test_network_mode_services(project: Project) -> None:
    db = project.services["db"]
    body = containerspec.create_body(project, db, 1, "busybox")
    assert body["HostConfig"]["NetworkMode"] == "none"
    assert "NetworkingConfig" not in body
    assert naming.container_name(project, db, 1) == "shop-db-1"


def test_deploy_restart_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "compose.yaml").write_text(
        "services:\n  a:\n    image: busybox\n    deploy:\n      restart_policy:\n"
        "        condition: on-failure\n        max_attempts: 2\n"
        "  b:\n    image: busybox\n    deploy: {restart_policy: {condition: any}}\n")
    monkeypatch.chdir(tmp_path)
    p = load_project(Options(environ={}))
    policies = [containerspec.create_body(p, s, 1, "busybox")["HostConfig"]["RestartPolicy"]
                for s in p.services.values()]
    assert policies == [{"Name": "on-failure", "MaximumRetryCount": 2},
                        {"Name": "always", "MaximumRetryCount": 0}]
