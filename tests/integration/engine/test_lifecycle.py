"""Container lifecycle through the CLI: ps, logs, exec, stop/kill/restart/pause, wait, rm,
restart policies, health checks, events, and live-restore across daemon restarts."""

from __future__ import annotations

import json
import os
import signal
import time

from helpers.daemon import PortsideDaemon

LOOP = "echo started; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"


def _status(daemon: PortsideDaemon, name: str) -> str:
    return str(daemon.inspect(name)["State"]["Status"])


def test_detached_container_lifecycle(daemon: PortsideDaemon) -> None:
    cid = daemon.cli("run", "-d", "--name", "web", "busybox", "sh", "-c", LOOP).stdout.strip()
    assert len(cid) == 64
    ps = daemon.cli("ps").stdout.splitlines()
    assert ps[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS",
                             "NAMES"]
    assert cid[:12] in ps[1] and "Up " in ps[1] and ps[1].endswith("web")
    row = json.loads(daemon.cli("ps", "--format", "json").stdout.splitlines()[0])
    assert row["Names"] == "web" and row["State"] == "running"
    daemon.wait_for(lambda: "tick 3" in daemon.cli("logs", "web").stdout, what="ticks")

    assert daemon.cli("exec", "web", "cat", "/etc/hostname").stdout.strip() == cid[:12]
    r = daemon.cli("exec", "-e", "X=1", "-w", "/tmp", "-u", "nobody", "web", "sh", "-c",
                   'echo $X $(pwd) $(id -u); exit 4', check=False)
    assert r.returncode == 4 and r.stdout.split() == ["1", "/tmp", "65534"]
    assert daemon.cli("exec", "-t", "web", "tty").stdout.strip().startswith("/dev/pts/")

    top = daemon.cli("top", "web").stdout
    assert "PID" in top.splitlines()[0] and "sleep" in top or "sh -c" in top

    daemon.cli("pause", "web")
    assert _status(daemon, "web") == "paused"
    assert "(Paused)" in daemon.cli("ps").stdout
    daemon.cli("unpause", "web")
    assert _status(daemon, "web") == "running"

    daemon.cli("kill", "-s", "HUP", "web")  # sh as PID 1 ignores HUP: still running
    assert _status(daemon, "web") == "running"

    daemon.cli("stop", "-t", "1", "web")
    state = daemon.inspect("web")["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 137
    assert daemon.cli("ps", "-q").stdout == ""
    assert "Exited (137)" in daemon.cli("ps", "-a", "--filter", "status=exited").stdout

    daemon.cli("start", "web")
    assert _status(daemon, "web") == "running"
    daemon.cli("restart", "-t", "1", "web")
    assert _status(daemon, "web") == "running"
    assert "started" in daemon.cli("logs", "web").stdout  # logs survive restarts

    r = daemon.cli("rm", "web", check=False)
    assert r.returncode != 0 and "running" in r.stderr
    daemon.cli("rm", "-f", "web")
    assert daemon.cli("ps", "-aq").stdout == ""
    r = daemon.cli("inspect", "web", check=False)
    assert r.returncode == 1 and "No such container: web" in r.stderr


def test_logs_options(daemon: PortsideDaemon) -> None:
    daemon.cli("run", "--name", "lines", "busybox", "sh", "-c",
               "for i in 1 2 3 4 5; do echo line $i; done; echo oops >&2")
    r = daemon.cli("logs", "lines")
    assert r.stdout.splitlines() == [f"line {i}" for i in range(1, 6)]
    assert r.stderr == "oops\n"
    assert daemon.cli("logs", "--tail", "2", "lines").stdout == "line 5\n"
    stamped = daemon.cli("logs", "-t", "lines").stdout.splitlines()[0]
    assert stamped.endswith("Z line 1") and stamped[:4].isdigit()
    assert daemon.cli("logs", "--since", "1h", "lines").stdout.count("line") == 5
    assert daemon.cli("logs", "--until", "1h", "lines").stdout == ""
    assert daemon.cli("logs", "-f", "lines").stdout.count("line") == 5  # exited: -f returns


def test_logs_follow_streams_until_exit(daemon: PortsideDaemon) -> None:
    daemon.cli("run", "-d", "--name", "short", "busybox", "sh", "-c",
               "for i in 1 2 3; do echo n $i; sleep 0.3; done")
    r = daemon.cli("logs", "-f", "short")
    assert r.stdout.splitlines() == ["n 1", "n 2", "n 3"]


def test_wait_returns_the_exit_code(daemon: PortsideDaemon) -> None:
    daemon.cli("run", "-d", "--name", "waiter", "busybox", "sh", "-c", "sleep 0.5; exit 3")
    assert daemon.cli("wait", "waiter").stdout.strip() == "3"
    assert daemon.cli("ps", "-a", "--filter", "exited=3", "-q").stdout.strip() != ""


def test_restart_policy_on_failure_counts_retries(daemon: PortsideDaemon) -> None:
    daemon.cli("run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox",
               "sh", "-c", "exit 1")

    def done() -> bool:
        doc = daemon.inspect("flaky")
        return doc["RestartCount"] == 2 and doc["State"]["Status"] == "exited"

    daemon.wait_for(done, what="two restarts then exited")
    time.sleep(1)
    assert daemon.inspect("flaky")["RestartCount"] == 2


def test_restart_always_and_stop_wins(daemon: PortsideDaemon) -> None:
    daemon.cli("run", "-d", "--name", "again", "--restart", "always", "busybox",
               "sh", "-c", "sleep 0.3")
    daemon.wait_for(lambda: daemon.inspect("again")["RestartCount"] >= 2, what="restarts")
    daemon.cli("stop", "-t", "1", "again")
    time.sleep(1)
    doc = daemon.inspect("again")
    assert doc["State"]["Status"] == "exited"
    count = doc["RestartCount"]
    time.sleep(1)
    assert daemon.inspect("again")["RestartCount"] == count


def test_health_check_becomes_healthy_then_unhealthy(daemon: PortsideDaemon) -> None:
    daemon.cli("run", "-d", "--name", "hc", "--health-cmd", "cat /tmp/ok",
               "--health-interval", "300ms", "--health-retries", "2", "busybox",
               "sh", "-c", "touch /tmp/ok; sleep 300")
    daemon.wait_for(lambda: "(healthy)" in daemon.cli("ps").stdout, what="healthy")
    daemon.cli("exec", "hc", "rm", "/tmp/ok")
    daemon.wait_for(lambda: daemon.inspect("hc")["State"]["Health"]["Status"] == "unhealthy",
                    what="unhealthy")
    health = daemon.inspect("hc")["State"]["Health"]
    assert health["FailingStreak"] >= 2
    assert 1 <= len(health["Log"]) <= 5
    assert "No such file" in health["Log"][-1]["Output"]
    events = daemon.cli("events", "--since", "5m", "--until", "0s", "--filter",
                        "container=hc").stdout
    assert "health_status: healthy" in events and "health_status: unhealthy" in events


def test_events_report_state_changes(daemon: PortsideDaemon) -> None:
    daemon.cli("run", "--rm", "--name", "ev", "busybox", "true")
    out = daemon.cli("events", "--since", "5m", "--until", "0s", "--format", "json").stdout
    actions = [json.loads(line)["Action"] for line in out.splitlines()]
    for action in ("create", "start", "die", "destroy"):
        assert action in actions
    assert actions.index("create") < actions.index("start") < actions.index("die")


def test_container_prune_removes_only_stopped(daemon: PortsideDaemon) -> None:
    daemon.cli("run", "--name", "done1", "busybox", "true")
    daemon.cli("create", "--name", "fresh", "busybox", "true")
    daemon.cli("run", "-d", "--name", "alive", "busybox", "sleep", "300")
    out = daemon.cli("container", "prune", "-f").stdout
    assert "Deleted Containers:" in out
    names = daemon.cli("ps", "-a", "--format", "json").stdout
    assert '"alive"' in names and "done1" not in names and "fresh" not in names


def test_live_restore_and_always_on_daemon_start(daemon: PortsideDaemon) -> None:
    daemon.cli("run", "-d", "--name", "keeper", "busybox", "sleep", "300")
    daemon.cli("run", "-d", "--name", "phoenix", "--restart", "always", "busybox",
               "sleep", "300")
    pid = daemon.inspect("keeper")["State"]["Pid"]
    phoenix_pid = daemon.inspect("phoenix")["State"]["Pid"]
    daemon.stop()
    os.kill(phoenix_pid, signal.SIGKILL)  # dies while no daemon watches
    os.kill(pid, 0)  # still running without the daemon
    daemon.start()
    state = daemon.inspect("keeper")["State"]
    assert state["Running"] and state["Pid"] == pid
    daemon.wait_for(lambda: daemon.inspect("phoenix")["State"]["Running"], what="phoenix")
    daemon.cli("stop", "-t", "1", "keeper")
    assert daemon.inspect("keeper")["State"]["ExitCode"] == 137
