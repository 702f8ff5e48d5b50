"""The docker client's own `stack deploy|ls|services|rm` against portside's daemon, and the
same file through `portside stack deploy`: both make the same services."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.daemon import PortsideDaemon

pytestmark = pytest.mark.interop

FILE = """
services:
  app:
    image: busybox
    command: [sh, -c, "trap 'exit 0' TERM; while true; do sleep 1; done"]
    deploy:
      replicas: 2
      update_config: {parallelism: 1, order: start-first}
      labels: {tier: front}
networks:
  default: {driver: bridge}
"""


def test_docker_stack_deploy_and_rm(daemon: PortsideDaemon, tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(FILE)
    daemon.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    try:
        daemon.docker("stack", "deploy", "--detach=true", "-c", str(tmp_path / "compose.yaml"),
                      "sc-dk")
        assert "sc-dk" in daemon.docker("stack", "ls").stdout
        theirs = json.loads(daemon.docker("service", "inspect", "sc-dk_app").stdout)[0]["Spec"]
        daemon.cli("stack", "deploy", "-c", str(tmp_path / "compose.yaml"), "sc-pt")
        ours = json.loads(daemon.cli("service", "inspect", "sc-pt_app").stdout)[0]["Spec"]
        for spec in (theirs, ours):
            assert spec["Mode"] == {"Replicated": {"Replicas": 2}}
            assert spec["Labels"]["tier"] == "front"
            assert spec["UpdateConfig"]["Order"] == "start-first"
        assert theirs["Labels"]["com.docker.stack.namespace"] == "sc-dk"
        assert ours["Labels"]["com.docker.stack.namespace"] == "sc-pt"
        assert theirs["TaskTemplate"]["ContainerSpec"]["Args"] == \
            ours["TaskTemplate"]["ContainerSpec"]["Args"]
        # `docker stack rm` removes the network right after the services, while their task
        # containers still stop (the daemon refuses: "has active endpoints"); portside's
        # stack rm waits for them, and removes the docker-made stack as well
        daemon.cli("stack", "rm", "sc-dk", "sc-pt")
        assert daemon.cli("stack", "ls", "--format", "json").stdout.strip() == ""
    finally:
        daemon.docker("swarm", "leave", "--force", check=False)
