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


def build_web(d: PortsideDaemon, tag: str, body: str, check: str, tmp: Any) -> None:
    """An image whose httpd answers `body`, with a HEALTHCHECK of `check`."""
    ctx = tmp / tag.replace(":", "-")
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        f"RUN mkdir /www && echo {body} > /www/index.html\n"
        f"HEALTHCHECK --interval=1s --timeout=2s --retries=2 CMD {check}\n"
        'CMD ["httpd", "-f", "-p", "80", "-h", "/www"]\n')
    d.docker("build", "-q", "-t", tag, str(ctx))


def answers(d: PortsideDaemon, service: str) -> list[str]:
    """What each running task's httpd answers (from the host, to the task's address)."""
    import urllib.request

    got = []
    for t in running(d, service):
        cid = d.docker("ps", "-q", "--no-trunc", "--filter",
                       f"label=com.docker.swarm.task.id={t['ID']}").stdout.strip()
        ip = d.docker("inspect", "--format",
                      "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", cid).stdout
        with urllib.request.urlopen(f"http://{ip.strip()}/", timeout=10) as r:
            got.append(r.read().decode().strip())
    return got


def healthy(d: PortsideDaemon, service: str) -> list[str]:
    states = []
    for t in running(d, service):
        cid = d.docker("ps", "-q", "--no-trunc", "--filter",
                       f"label=com.docker.swarm.task.id={t['ID']}").stdout.strip()
        states.append(d.docker("inspect", "--format", "{{.State.Health.Status}}",
                               cid).stdout.strip())
    return states


def test_rolling_update_waits_for_health_then_rollback(swarm: PortsideDaemon,
                                                       tmp_path: Any) -> None:
    d = swarm
    build_web(d, "or-web:1", "v1", "wget -qO- localhost/", tmp_path)
    build_web(d, "or-web:2", "v2", "wget -qO- localhost/", tmp_path)
    d.docker("service", "create", "--detach", "--name", "or-web", "--replicas", "2",
             "--update-parallelism", "1", "--update-order", "start-first",
             "--update-monitor", "1s", "or-web:1")
    wait_until(lambda: healthy(d, "or-web") == ["healthy", "healthy"], "2 healthy tasks", d)
    assert answers(d, "or-web") == ["v1", "v1"]

    # the client waits for the update to converge, as with Docker
    # (it returns once the tasks have been stable for the monitor period, which may be
    # just before the updater records the end)
    d.docker("service", "update", "--image", "or-web:2", "or-web", timeout=180)
    wait_until(lambda: inspect(d, "or-web")["UpdateStatus"]["State"] == "completed",
               "the update's end", d)
    doc = inspect(d, "or-web")
    assert doc["UpdateStatus"]["Message"] == "update completed"
    assert doc["UpdateStatus"]["CompletedAt"]
    assert doc["PreviousSpec"]["TaskTemplate"]["ContainerSpec"]["Image"].startswith("or-web:1")
    assert answers(d, "or-web") == ["v2", "v2"]
    assert healthy(d, "or-web") == ["healthy", "healthy"]

    d.docker("service", "rollback", "--detach", "or-web")
    wait_until(lambda: inspect(d, "or-web")["UpdateStatus"]["State"] == "rollback_completed",
               "the rollback", d, timeout=120)
    wait_until(lambda: len(running(d, "or-web")) == 2, "2 running tasks", d)
    assert answers(d, "or-web") == ["v1", "v1"]

    logs = d.docker("service", "logs", "--raw", "or-web").stdout
    assert isinstance(logs, str)
    events = d.docker("events", "--since", "0", "--until", str(int(time.time()) + 1),
                      "--filter", "type=service", "--format", "{{.Action}}").stdout.split()
    assert "create" in events and "update" in events


def test_failed_health_check_rolls_back_without_killing_healthy_tasks(
        swarm: PortsideDaemon, tmp_path: Any) -> None:
    d = swarm
    build_web(d, "or-good:1", "good", "wget -qO- localhost/", tmp_path)
    build_web(d, "or-bad:1", "bad", "false", tmp_path)
    d.docker("service", "create", "--detach", "--name", "or-roll", "--replicas", "3",
             "--update-parallelism", "1", "--update-monitor", "2s",
             "--update-failure-action", "rollback", "--restart-delay", "1s", "or-good:1")
    wait_until(lambda: healthy(d, "or-roll") == ["healthy"] * 3, "3 healthy tasks", d)
    before = {t["Name"]: t["ID"] for t in running(d, "or-roll")}

    d.docker("service", "update", "--detach", "--image", "or-bad:1", "or-roll")
    wait_until(lambda: inspect(d, "or-roll")["UpdateStatus"]["State"] == "rollback_completed",
               "the automatic rollback", d, timeout=180)
    status = inspect(d, "or-roll")["UpdateStatus"]
    assert status["Message"] == "rollback completed"
    wait_until(lambda: healthy(d, "or-roll") == ["healthy"] * 3, "3 healthy tasks again", d)
    assert answers(d, "or-roll") == ["good"] * 3
    after = {t["Name"]: t["ID"] for t in running(d, "or-roll")}
    # only the first slot was tried with the bad image; the other healthy tasks were
    # never stopped
    changed = [name for name in before if after[name] != before[name]]
    assert changed == ["or-roll.1"]
    history = tasks(d, "or-roll", "--filter", "name=or-roll.1")
    assert any(t["Image"].startswith("or-bad:1") for t in history)


def test_daemon_killed_mid_update_adopts_tasks_and_finishes(swarm: PortsideDaemon,
                                                            tmp_path: Any) -> None:
    d = swarm
    build_web(d, "or-up:1", "v1", "wget -qO- localhost/", tmp_path)
    build_web(d, "or-up:2", "v2", "wget -qO- localhost/", tmp_path)
    d.docker("service", "create", "--detach", "--name", "or-up", "--replicas", "3",
             "--update-parallelism", "1", "--update-delay", "2s", "--update-monitor", "1s",
             "or-up:1")
    wait_until(lambda: healthy(d, "or-up") == ["healthy"] * 3, "3 healthy tasks", d)
    d.docker("service", "update", "--detach", "--image", "or-up:2", "or-up")
    wait_until(lambda: "v2" in answers(d, "or-up"), "the first new task", d)
    assert inspect(d, "or-up")["UpdateStatus"]["State"] == "updating"
    before = {t["ID"] for t in running(d, "or-up")}

    assert d.proc is not None
    d.proc.kill()  # SIGKILL: no clean-up of any kind
    d.proc.wait()
    d.proc = None
    d.start()

    wait_until(lambda: inspect(d, "or-up")["UpdateStatus"]["State"] == "completed",
               "the update carried on", d, timeout=180)
    wait_until(lambda: healthy(d, "or-up") == ["healthy"] * 3, "3 healthy tasks", d)
    assert sorted(answers(d, "or-up")) == ["v2"] * 3
    # one container per slot: the tasks that ran across the restart were adopted
    assert len(d.docker("ps", "-q").stdout.split()) == 3
    after = {t["ID"] for t in running(d, "or-up")}
    assert before & after  # the v2 task(s) started before the kill are still the ones


def test_tasks_join_the_service_networks(swarm: PortsideDaemon) -> None:
    d = swarm
    d.docker("network", "create", "or-net")
    try:
        d.docker("service", "create", "--detach", "--name", "or-netsvc", "--network", "or-net",
                 "--replicas", "2", "busybox", "sleep", "1000")
        wait_until(lambda: len(running(d, "or-netsvc")) == 2, "2 running tasks", d)
        cids = d.docker("ps", "-q", "--filter", "name=or-netsvc").stdout.split()
        nets = [json.loads(d.docker("inspect", "--format", "{{json .NetworkSettings.Networks}}",
                                    cid).stdout) for cid in cids]
        assert all(list(n) == ["or-net"] and "or-netsvc" in n["or-net"]["Aliases"]
                   for n in nets)
        # one task reaches the other by its address on the service's network
        other = nets[1]["or-net"]["IPAddress"]
        d.docker("exec", cids[0], "ping", "-c", "1", "-W", "5", other)
        d.docker("service", "rm", "or-netsvc")
        wait_until(lambda: not task_containers(d), "no task containers", d)
    finally:
        d.docker("network", "rm", "or-net", check=False)


def test_restart_policy_condition_and_max_attempts(swarm: PortsideDaemon) -> None:
    d = swarm
    d.docker("service", "create", "--detach", "--name", "or-flaky", "--restart-condition",
             "on-failure", "--restart-max-attempts", "2", "--restart-delay", "0s",
             "busybox", "sh", "-c", "exit 1")
    wait_until(lambda: len(tasks(d, "or-flaky")) == 3
               and all(t["CurrentState"].startswith("Failed") for t in tasks(d, "or-flaky")),
               "three failed tasks (the first and two restarts)", d)
    assert all("task: non-zero exit (1)" in t["Error"] for t in tasks(d, "or-flaky"))
    d.docker("service", "create", "--detach", "--name", "or-once", "--restart-condition",
             "on-failure", "busybox", "true")
    wait_until(lambda: [t["CurrentState"].split()[0] for t in tasks(d, "or-once")]
               == ["Complete"], "a completed task", d)
    d.docker("service", "create", "--detach", "--name", "or-never", "--restart-condition",
             "none", "busybox", "sh", "-c", "exit 2")
    wait_until(lambda: [t["CurrentState"].split()[0] for t in tasks(d, "or-never")]
               == ["Failed"], "a failed task", d)
    # a pass of the reconciler later, still no replacement
    d.docker("service", "scale", "--detach", "or-once=1")
    assert len(tasks(d, "or-never")) == 1 and len(tasks(d, "or-flaky")) == 3


def test_failed_update_pauses_and_the_client_says_so(swarm: PortsideDaemon,
                                                     tmp_path: Any) -> None:
    d = swarm
    build_web(d, "or-p:1", "one", "wget -qO- localhost/", tmp_path)
    build_web(d, "or-p:2", "two", "false", tmp_path)
    d.docker("service", "create", "--detach", "--name", "or-pause", "--replicas", "2",
             "--update-monitor", "2s", "--restart-delay", "1s", "or-p:1")
    wait_until(lambda: healthy(d, "or-pause") == ["healthy"] * 2, "2 healthy tasks", d)
    r = d.docker("service", "update", "--image", "or-p:2", "or-pause", check=False,
                 timeout=180)
    assert r.returncode != 0 and "update paused" in r.stderr
    status = inspect(d, "or-pause")["UpdateStatus"]
    assert status["State"] == "paused"
    assert status["Message"].startswith("update paused due to failure or early termination")
    # the second slot was never touched
    assert "one" in answers(d, "or-pause")


def test_node_labels_and_drain_move_tasks(swarm: PortsideDaemon) -> None:
    d = swarm
    node = d.docker("node", "ls", "-q").stdout.strip()
    d.docker("service", "create", "--detach", "--name", "or-moon", "--constraint",
             "node.labels.zone==moon", "busybox", "sleep", "1000")
    wait_until(lambda: any("scheduling constraints not satisfied" in t["Error"]
                           for t in tasks(d, "or-moon")), "a constrained task", d)
    d.docker("node", "update", "--label-add", "zone=moon", node)
    wait_until(lambda: len(running(d, "or-moon")) == 1, "the task placed once labelled", d)

    d.docker("node", "update", "--availability", "drain", node)
    wait_until(lambda: not d.docker("ps", "-q").stdout.strip(), "the drained node empty", d)
    assert any("not available for new tasks" in t["Error"] for t in tasks(d, "or-moon"))
    d.docker("node", "update", "--availability", "active", node)
    wait_until(lambda: len(running(d, "or-moon")) == 1, "the task back", d)


def test_host_mode_published_port_reaches_the_task(swarm: PortsideDaemon, tmp_path: Any) -> None:
    import urllib.request

    d = swarm
    build_web(d, "or-hp:1", "hosted", "wget -qO- localhost/", tmp_path)
    d.docker("service", "create", "--detach", "--name", "or-hostport", "--publish",
             "mode=host,published=18437,target=80", "or-hp:1")
    wait_until(lambda: healthy(d, "or-hostport") == ["healthy"], "a healthy task", d)
    with urllib.request.urlopen("http://127.0.0.1:18437/", timeout=10) as r:
        assert r.read().decode().strip() == "hosted"
    port = inspect(d, "or-hostport")["Endpoint"]["Ports"][0]
    assert (port["TargetPort"], port["PublishedPort"], port["PublishMode"]) == (80, 18437, "host")


def test_an_unhealthy_task_is_replaced(swarm: PortsideDaemon) -> None:
    d = swarm
    d.docker("service", "create", "--detach", "--name", "or-health", "--health-cmd",
             "test -f /tmp/ok", "--health-interval", "1s", "--health-retries", "1",
             "--restart-delay", "0s", "busybox", "sh", "-c", "touch /tmp/ok; exec sleep 1000")
    wait_until(lambda: healthy(d, "or-health") == ["healthy"], "a healthy task", d)
    first = running(d, "or-health")[0]["ID"]
    cid = d.docker("ps", "-q", "--filter", f"label=com.docker.swarm.task.id={first}").stdout
    d.docker("exec", cid.strip(), "rm", "/tmp/ok")
    wait_until(lambda: healthy(d, "or-health") == ["healthy"]
               and running(d, "or-health")[0]["ID"] != first, "a healthy replacement", d)
    old = next(t for t in tasks(d, "or-health") if t["ID"] == first)
    assert "task: unhealthy container" in old["Error"]
    assert old["DesiredState"] == "Shutdown"


def test_service_logs_name_each_task(swarm: PortsideDaemon) -> None:
    d = swarm
    d.docker("service", "create", "--detach", "--name", "or-logs", "--replicas", "2",
             "busybox", "sh", "-c", "echo hello from the task; exec sleep 1000")
    wait_until(lambda: len(running(d, "or-logs")) == 2, "2 running tasks", d)
    wait_until(lambda: d.docker("service", "logs", "or-logs").stdout.count("hello") == 2,
               "both tasks' lines", d)
    lines = d.docker("service", "logs", "or-logs").stdout.splitlines()
    names = sorted(line.split("|")[0].strip().split(".")[0:2][1] for line in lines)
    assert names == ["1", "2"]
    assert all(line.split("|", 1)[1].strip() == "hello from the task" for line in lines)
    assert all(line.startswith("or-logs.") and "@" in line.split("|")[0] for line in lines)


def test_bad_input_gets_one_line_errors(swarm: PortsideDaemon) -> None:
    d = swarm
    r = d.docker("service", "create", "--detach", "--name", "bad_name!", "busybox", check=False)
    assert r.returncode != 0 and "name must be valid as a DNS name component" in r.stderr
    r = d.docker("service", "update", "--detach", "--image", "busybox", "or-nosuch",
                 check=False)
    assert r.returncode != 0 and "service or-nosuch not found" in r.stderr
    d.docker("service", "create", "--detach", "--name", "or-twice", "busybox", "sleep", "100")
    r = d.docker("service", "create", "--detach", "--name", "or-twice", "busybox", check=False)
    assert r.returncode != 0 and "already exists" in r.stderr
    assert "Traceback" not in d.log()
    pretty = d.docker("service", "inspect", "--pretty", "or-twice").stdout
    assert "Name:\t\tor-twice" in pretty and "Replicated" in pretty
    r = d.docker("service", "rollback", "or-twice", check=False)
    assert r.returncode != 0 and "does not have a previous spec" in r.stderr


def test_task_history_is_bounded_by_the_limit(swarm: PortsideDaemon) -> None:
    d = swarm
    limit = inspect_swarm_limit(d)
    assert limit == 5
    d.docker("service", "create", "--detach", "--name", "or-crash", "--restart-delay", "0s",
             "busybox", "sh", "-c", "exit 1")

    def failures() -> int:
        out = d.docker("events", "--since", "0", "--until", str(int(time.time()) + 1),
                       "--filter", "type=service", "--format", "{{.Action}}").stdout
        return out.split().count("failed")

    wait_until(lambda: failures() >= limit + 3, "more failures than the limit", d, timeout=120)
    assert len(tasks(d, "or-crash")) <= limit
    assert len(task_containers(d)) <= limit


def inspect_swarm_limit(d: PortsideDaemon) -> int:
    out = d.docker("info", "--format",
                   "{{.Swarm.Cluster.Spec.Orchestration.TaskHistoryRetentionLimit}}").stdout
    return int(out.strip())


def test_rolling_update_under_traffic_fails_no_request(swarm: PortsideDaemon,
                                                       tmp_path: Any) -> None:
    import threading
    import urllib.request

    d = swarm
    build_web(d, "or-live:1", "v1", "wget -qO- localhost/", tmp_path)
    build_web(d, "or-live:2", "v2", "wget -qO- localhost/", tmp_path)
    d.docker("service", "create", "--detach", "--name", "or-live", "--replicas", "2",
             "--publish", "published=18439,target=80", "--update-order", "start-first",
             "--update-monitor", "1s", "or-live:1")
    wait_until(lambda: healthy(d, "or-live") == ["healthy"] * 2, "2 healthy tasks", d)
    seen: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                with urllib.request.urlopen("http://127.0.0.1:18439/", timeout=5) as r:
                    seen.append(r.read().decode().strip())
            except OSError as exc:
                failures.append(repr(exc))

    wait_until(lambda: _answers_once(), "the published port", d)
    t = threading.Thread(target=client)
    t.start()
    try:
        d.docker("service", "update", "--image", "or-live:2", "or-live", timeout=180)
        wait_until(lambda: inspect(d, "or-live")["UpdateStatus"]["State"] == "completed",
                   "the update's end", d)
        count = len(seen)
        wait_until(lambda: len(seen) > count + 20, "more requests after the update", d)
    finally:
        stop.set()
        t.join()
    assert failures == []
    assert "v1" in seen and seen[-1] == "v2" and len(seen) > 50


def _answers_once() -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen("http://127.0.0.1:18439/", timeout=5) as r:
            return r.read().decode().strip() == "v1"
    except OSError:
        return False
