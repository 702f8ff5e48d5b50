"""`portside service` and `portside stack` end to end, against the daemon's orchestrator."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.daemon import PortsideDaemon

SLEEP = ["busybox", "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]


def _rows(d: PortsideDaemon, *args: str) -> list[dict[str, str]]:
    out = d.cli(*args, "--format", "json").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_create_scale_update_rm(daemon: PortsideDaemon) -> None:
    created = daemon.cli("service", "create", "--name", "sc-web", "--replicas", "2",
                         "--update-parallelism", "1", "--restart-condition", "any", *SLEEP)
    assert "overall progress: 2 out of 2 tasks" in created.stderr
    [row] = _rows(daemon, "service", "ls")
    assert (row["Name"], row["Mode"], row["Replicas"]) == ("sc-web", "replicated", "2/2")

    daemon.cli("service", "scale", "sc-web=3")
    assert _rows(daemon, "service", "ls")[0]["Replicas"] == "3/3"
    tasks = _rows(daemon, "service", "ps", "sc-web", "--filter", "desired-state=running")
    assert sorted(t["Name"] for t in tasks) == ["sc-web.1", "sc-web.2", "sc-web.3"]

    daemon.cli("service", "update", "--env-add", "V=2", "sc-web")
    spec = json.loads(daemon.cli("service", "inspect", "sc-web").stdout)[0]["Spec"]
    assert spec["TaskTemplate"]["ContainerSpec"]["Env"] == ["V=2"]
    history = _rows(daemon, "service", "ps", "sc-web")
    assert any(t["Name"].startswith(" \\_ ") for t in history)  # the replaced tasks

    pretty = daemon.cli("service", "inspect", "--pretty", "sc-web").stdout
    assert " Replicas:      3" in pretty and "Name:           sc-web" in pretty
    daemon.cli("service", "rm", "sc-web")
    assert _rows(daemon, "service", "ls") == []


def test_unknown_service_and_bad_input_are_one_line(daemon: PortsideDaemon) -> None:
    r = daemon.cli("service", "inspect", "--pretty", "sc-nothing", check=False)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1
    r = daemon.cli("service", "create", "--name", "sc-x", "--replicas", "x", *SLEEP,
                   check=False)
    assert r.returncode == 2 and "invalid --replicas 'x'" in r.stderr


def test_stack_deploy_redeploy_rm(daemon: PortsideDaemon, tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        "services:\n"
        "  app:\n    image: busybox\n    init: true\n"
        "    command: [sh, -c, \"trap 'exit 0' TERM; while true; do sleep 1; done\"]\n"
        "    depends_on: [db]\n    deploy: {replicas: 2}\n"
        "  db:\n    image: busybox\n    command: [sleep, '3600']\n    init: true\n")
    first = daemon.cli("stack", "deploy", "-c", str(tmp_path / "compose.yaml"), "--wait",
                       "sc-st")
    assert "services.app.depends_on: not applied by stack deploy" in first.stderr
    assert {r["Name"] for r in _rows(daemon, "stack", "services", "sc-st")} == {
        "sc-st_app", "sc-st_db"}
    assert _rows(daemon, "stack", "ls") == [{"Name": "sc-st", "Services": "2"}]
    again = daemon.cli("stack", "deploy", "-c", str(tmp_path / "compose.yaml"), "sc-st")
    assert "Updating service" not in again.stdout and "Creating service" not in again.stdout
    daemon.cli("stack", "rm", "sc-st")
    assert _rows(daemon, "stack", "ls") == []
    nets = daemon.cli("network", "ls", "--format", "json").stdout
    assert "sc-st_default" not in nets


def test_an_unhealthy_update_rolls_back_and_exits_1(daemon: PortsideDaemon) -> None:
    loop = "trap 'exit 0' TERM; while true; do sleep 1; done"
    daemon.cli("service", "create", "--name", "sc-hc", "--replicas", "2",
               "--health-cmd", "test -f /tmp/ok", "--health-interval", "1s",
               "--health-retries", "1", "--update-failure-action", "rollback",
               "--update-monitor", "2s", "busybox", "sh", "-c", f"touch /tmp/ok; {loop}")
    r = daemon.cli("service", "update", "--args", f"sh -c \"{loop}\"", "sc-hc", check=False,
                   timeout=300)
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(
        "Error: service sc-hc: update rollback completed")
    spec = json.loads(daemon.cli("service", "inspect", "sc-hc").stdout)[0]
    assert spec["UpdateStatus"]["State"] == "rollback_completed"
    assert spec["Spec"]["TaskTemplate"]["ContainerSpec"]["Args"][-1].startswith("touch /tmp/ok")
    assert _rows(daemon, "service", "ls")[0]["Replicas"] == "2/2"


def test_swarm_and_node_commands(daemon: PortsideDaemon) -> None:
    daemon.cli("swarm", "init")
    [node] = _rows(daemon, "node", "ls")
    assert node["Status"] == "Ready" and node["ManagerStatus"] == "Leader"
    daemon.cli("node", "update", "--label-add", "zone=east", "self")
    doc = json.loads(daemon.cli("node", "inspect", "self").stdout)[0]
    assert doc["Spec"]["Labels"] == {"zone": "east"}
    daemon.cli("service", "create", "--name", "sc-east", "--constraint",
               "node.labels.zone==east", *SLEEP)
    assert _rows(daemon, "service", "ls")[0]["Replicas"] == "1/1"


def test_service_logs_name_each_task(daemon: PortsideDaemon) -> None:
    daemon.cli("service", "create", "--name", "sc-log", "busybox", "sh", "-c",
               "echo hello from a task; trap 'exit 0' TERM; while true; do sleep 1; done")
    daemon.wait_for(lambda: "hello from a task" in daemon.cli(
        "service", "logs", "sc-log").stdout, what="the task's output")
    [line] = daemon.cli("service", "logs", "sc-log").stdout.splitlines()
    name, _, message = line.partition(" | ")
    assert name.startswith("sc-log.1.") and "@" in name and message == "hello from a task"


def test_a_missing_image_shows_in_service_ps(daemon: PortsideDaemon) -> None:
    daemon.cli("service", "create", "--detach", "--name", "sc-noimg", "sc-no-such-image:1")

    def errors() -> list[str]:
        return [t["Error"] for t in _rows(daemon, "service", "ps", "--no-trunc", "sc-noimg")
                if t["Error"]]

    daemon.wait_for(lambda: bool(errors()), what="a task error")
    assert "No such image: sc-no-such-image:1" in errors()[0]


def test_stack_secrets_are_made_referenced_and_removed(daemon: PortsideDaemon,
                                                       tmp_path: Path) -> None:
    (tmp_path / "pw.txt").write_text("s3cret")
    (tmp_path / "compose.yaml").write_text(
        "services:\n  app:\n    image: busybox\n    init: true\n"
        "    command: [sh, -c, \"cat /run/secrets/pw; while true; do sleep 1; done\"]\n"
        "    secrets: [pw]\n"
        "secrets:\n  pw: {file: ./pw.txt}\n")
    daemon.cli("stack", "deploy", "-c", str(tmp_path / "compose.yaml"), "--wait", "sc-sec")
    spec = json.loads(daemon.cli("service", "inspect", "sc-sec_app").stdout)[0]["Spec"]
    [ref] = spec["TaskTemplate"]["ContainerSpec"]["Secrets"]
    assert ref["SecretName"] == "sc-sec_pw" and ref["SecretID"]
    assert "sc-sec_pw" in daemon.cli("secret", "ls").stdout
    daemon.cli("stack", "rm", "sc-sec")
    assert "sc-sec_pw" not in daemon.cli("secret", "ls").stdout
