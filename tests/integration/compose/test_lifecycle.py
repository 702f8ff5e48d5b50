"""compose up / ps / exec / up again / scale / down against a real daemon."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import Project

APP = """
services:
  db:
    image: busybox
    network_mode: none
    command: sh -c "echo db ready; touch /tmp/ready; exec sleep 1000"
    healthcheck:
      test: test -f /tmp/ready
      interval: 1s
    volumes: [data:/data]
    stop_grace_period: 1s
  web:
    image: busybox
    network_mode: none
    command: ["sleep", "1000"]
    depends_on:
      db: {condition: service_healthy}
    secrets: [pw, {source: cfg, target: app.conf, mode: 0400}]
    environment: {GREETING: "${GREETING:-hello}"}
    deploy: {replicas: 2}
    stop_grace_period: 1s
volumes:
  data:
secrets:
  pw:
    environment: COMPOSE_TEST_PW
  cfg:
    file: ./app.conf
"""


def test_up_converge_scale_down(project: Project) -> None:
    project.write(APP)
    (project.folder / "app.conf").write_text("level=debug\n")
    project.daemon.env["COMPOSE_TEST_PW"] = "hunter2"
    p = project.name
    project.compose("up", "-d")
    rows = project.ps()
    assert sorted(r["Name"] for r in rows) == [f"{p}-db-1", f"{p}-web-1", f"{p}-web-2"]
    assert all(r["State"] == "running" for r in rows)
    assert "(healthy)" in next(r["Status"] for r in rows if r["Service"] == "db")

    # the labels Docker Compose sets, readable with `portside ps --filter label=...`
    labels = project.daemon.inspect(f"{p}-web-2")["Config"]["Labels"]
    assert labels["com.docker.compose.project"] == p
    assert labels["com.docker.compose.service"] == "web"
    assert labels["com.docker.compose.container-number"] == "2"
    assert labels["com.docker.compose.oneoff"] == "False"
    assert labels["com.docker.compose.project.working_dir"] == str(project.folder)
    assert labels["com.docker.compose.project.config_files"] == str(
        project.folder / "compose.yaml")
    assert labels["com.docker.compose.depends_on"] == "db:service_healthy:false"
    assert len(labels["com.docker.compose.config-hash"]) == 64
    listed = project.daemon.cli("ps", "-q", "--filter", f"label=com.docker.compose.project={p}",
                                "--filter", "label=com.docker.compose.service=web").stdout
    assert len(listed.split()) == 2

    # secrets: on a tmpfs, read-only, with the asked mode; env interpolated
    out = project.compose("exec", "-T", "web", "sh", "-c",
                          "cat /run/secrets/pw; echo; cat /run/secrets/app.conf; echo $GREETING;"
                          " stat -c %a /run/secrets/app.conf;"
                          " grep ' /run/secrets/pw ' /proc/mounts").stdout
    assert out.splitlines()[:4] == ["hunter2", "level=debug", "hello", "400"]
    assert " tmpfs " in out and " ro," in out
    project.daemon.cli("volume", "inspect", f"{p}_data")

    # up again without changes: nothing is recreated
    before = project.ids()
    project.compose("up", "-d")
    assert project.ids() == before

    # a change to web only recreates web
    project.write(APP.replace('["sleep", "1000"]', '["sleep", "1001"]'))
    project.compose("up", "-d")
    after = project.ids()
    assert after[f"{p}-db-1"] == before[f"{p}-db-1"]
    assert after[f"{p}-web-1"] != before[f"{p}-web-1"]
    assert after[f"{p}-web-2"] != before[f"{p}-web-2"]

    # scaling adds numbered replicas and keeps the others; scaling down removes the last
    project.compose("up", "-d", "--scale", "web=3")
    scaled = project.ids()
    assert scaled[f"{p}-web-1"] == after[f"{p}-web-1"] and f"{p}-web-3" in scaled
    project.compose("up", "-d", "--scale", "web=1")
    assert sorted(project.ids()) == [f"{p}-db-1", f"{p}-web-1"]

    # stop / start / restart
    project.compose("stop", "web")
    assert {r["Name"] for r in project.ps()} == {f"{p}-db-1"}
    project.compose("start")
    assert len(project.ps()) == 2
    project.compose("restart", "db")

    # down -v: containers, volume and the secrets tmpfs are gone
    project.compose("down", "-v", "-t", "1")
    assert project.ps("-a") == []
    gone = project.daemon.cli("volume", "inspect", f"{p}_data", check=False)
    assert gone.returncode != 0
    assert f"compose/{p}/run" not in Path("/proc/self/mountinfo").read_text()


def test_two_projects_do_not_collide(project: Project) -> None:
    project.write("services:\n  app:\n    image: busybox\n    network_mode: none\n"
                  "    command: sleep 1000\n    stop_grace_period: 0s\n")
    other = f"{project.name}x"
    project.compose("up", "-d")
    project.compose("up", "-d", project=other)
    listed = project.daemon.cli("ps", "--format", "json").stdout.splitlines()
    mine = {json.loads(line)["Names"] for line in listed}
    assert {f"{project.name}-app-1", f"{other}-app-1"} <= mine
    project.compose("down", project=other)
    assert [r["Name"] for r in project.ps()] == [f"{project.name}-app-1"]


def test_completed_successfully_and_failures(project: Project) -> None:
    project.write("""
services:
  migrate:
    image: busybox
    network_mode: none
    command: sh -c "echo migrating; exit ${MIGRATE_EXIT:-0}"
  web:
    image: busybox
    network_mode: none
    command: sleep 1000
    stop_grace_period: 0s
    depends_on:
      migrate: {condition: service_completed_successfully}
""")
    project.compose("up", "-d", "--wait")
    rows = {r["Service"]: r for r in project.ps("-a")}
    assert rows["migrate"]["State"] == "exited" and rows["web"]["State"] == "running"
    assert "migrating" in project.compose("logs", "migrate").stdout
    project.compose("down")
    project.daemon.env["MIGRATE_EXIT"] = "3"
    failed = project.compose("up", "-d", check=False)
    assert failed.returncode != 0
    assert "didn't complete successfully" in failed.stderr and "exited with 3" in failed.stderr
    assert "web" not in {r["Service"] for r in project.ps("-a")}


def test_bad_file_starts_nothing(project: Project) -> None:
    project.write("services:\n  web:\n    image: busybox\n    network_mode: none\n"
                  "    ports: ['8080:80', '80:80:80']\n  db:\n    image: busybox\n")
    r = project.compose("up", "-d", check=False)
    assert r.returncode == 2
    assert r.stderr.strip() == ('Error: compose.yaml: services.web.ports[1]: invalid port'
                                ' "80:80:80"')
    assert project.daemon.cli("ps", "-aq").stdout == ""


def test_run_exec_logs_orphans(project: Project) -> None:
    project.write("services:\n  tool:\n    image: busybox\n    network_mode: none\n"
                  "    command: sh -c 'echo started; exec sleep 1000'\n"
                  "    environment: [MODE=test]\n    stop_grace_period: 0s\n"
                  "  gone:\n    image: busybox\n    network_mode: none\n"
                  "    command: sleep 1000\n    stop_grace_period: 0s\n")
    project.compose("up", "-d")
    out = project.compose("run", "--rm", "-T", "tool", "sh", "-c", "echo run $MODE").stdout
    assert out == "run test\n"
    assert len(project.ps("-a")) == 2  # the one-off container is gone
    assert project.compose("exec", "-T", "tool", "echo", "in").stdout == "in\n"
    assert project.compose("logs", "--no-log-prefix", "tool").stdout == "started\n"
    assert project.compose("logs", "tool").stdout.startswith("tool-1  | started")
    top = project.compose("top", "tool").stdout
    assert "sleep 1000" in top
    # a service removed from the file is an orphan: kept (with a warning) until asked
    project.write("services:\n  tool:\n    image: busybox\n    network_mode: none\n"
                  "    command: sh -c 'echo started; exec sleep 1000'\n"
                  "    environment: [MODE=test]\n    stop_grace_period: 0s\n")
    warned = project.compose("up", "-d")
    assert "orphan containers" in warned.stderr
    project.compose("up", "-d", "--remove-orphans")
    assert [r["Service"] for r in project.ps("-a")] == ["tool"]


def test_attached_up_follows_logs_until_exit(project: Project) -> None:
    project.write("services:\n  job:\n    image: busybox\n    network_mode: none\n"
                  "    command: sh -c 'echo one; echo two >&2; exit 4'\n"
                  "  other:\n    image: busybox\n    network_mode: none\n"
                  "    command: echo other\n")
    out = project.compose("up").stdout
    lines = out.splitlines()
    assert "job-1    | one" in lines and "job-1    | two" in lines
    assert "other-1  | other" in lines
    assert "job-1 exited with code 4" in lines and "other-1 exited with code 0" in lines


def test_unhealthy_dependency_stops_up(project: Project) -> None:
    project.write("""
services:
  db:
    image: busybox
    network_mode: none
    command: sleep 1000
    stop_grace_period: 0s
    healthcheck: {test: ["CMD", "false"], interval: 1s, retries: 1}
  web:
    image: busybox
    network_mode: none
    command: sleep 1000
    depends_on: {db: {condition: service_healthy}}
""")
    r = project.compose("up", "-d", check=False)
    assert r.returncode != 0
    assert f"dependency failed to start: container {project.name}-db-1 is unhealthy" in r.stderr
    assert [row["Service"] for row in project.ps("-a")] == ["db"]


def test_restart_true_follows_a_recreated_dependency(project: Project) -> None:
    text = """
services:
  db:
    image: busybox
    network_mode: none
    command: ["sh", "-c", "sleep 1000 # v1"]
    stop_grace_period: 0s
  app:
    image: busybox
    network_mode: none
    command: sh -c "echo start >> /starts; exec sleep 1000"
    stop_grace_period: 0s
    depends_on: {db: {condition: service_started, restart: true}}
"""
    project.write(text)
    project.compose("up", "-d")
    app_id = project.ids()[f"{project.name}-app-1"]
    project.write(text.replace("# v1", "# v2"))
    out = project.compose("up", "-d")
    assert f"Container {project.name}-app-1  Restarted" in out.stderr
    assert project.ids()[f"{project.name}-app-1"] == app_id  # restarted, not recreated
    # restarted in place: its writable layer, with the first start's line, is kept
    starts = project.compose("exec", "-T", "app", "cat", "/starts").stdout.split()
    assert starts == ["start", "start"]


def test_missing_external_network_or_volume_starts_nothing(project: Project) -> None:
    for kind in ("volume", "network"):
        use = ("volumes: [\"outside:/data\"]" if kind == "volume"
               else "networks: [outside]")
        project.write(f"""
services:
  app:
    image: busybox
    command: sleep 1000
    {use}
{kind}s:
  outside:
    external: true
    name: {project.name}-nowhere
""")
        r = project.compose("up", "-d", check=False)
        assert r.returncode != 0
        assert (f'{kind}s.outside: external {kind} "{project.name}-nowhere" not found'
                in r.stderr)
        assert "Traceback" not in r.stderr
        assert project.ps("-a") == []
