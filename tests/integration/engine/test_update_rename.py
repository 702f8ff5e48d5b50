"""`docker update` and `docker rename` (and `portside update|rename`) against the daemon."""

from __future__ import annotations

import json

from helpers.daemon import PortsideDaemon

LIMIT = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"


def test_docker_update_changes_the_limits_the_container_sees(daemon: PortsideDaemon) -> None:
    daemon.cli("run", "-d", "--name", "web", "busybox", "sleep", "300")
    r = daemon.docker("update", "--memory", "128m", "--memory-swap", "256m", "--cpu-shares",
                      "512", "--pids-limit", "50", "--restart", "on-failure:3", "web")
    assert r.stdout.strip() == "web"
    out = daemon.cli("exec", "web", "sh", "-c", LIMIT).stdout.strip()
    assert out == str(128 * 1024 * 1024)
    pids = daemon.cli("exec", "web", "sh", "-c", "cat /sys/fs/cgroup/pids/pids.max"
                      " 2>/dev/null || cat /sys/fs/cgroup/pids.max").stdout.strip()
    assert pids == "50"
    hc = json.loads(daemon.docker("inspect", "-f", "{{json .HostConfig}}", "web").stdout)
    assert hc["Memory"] == 128 * 1024 * 1024 and hc["MemorySwap"] == 256 * 1024 * 1024
    daemon.docker("update", "--pids-limit", "-1", "web")
    pids = daemon.cli("exec", "web", "cat", "/sys/fs/cgroup/pids/pids.max").stdout.strip()
    assert pids == "max"  # lifted (crun itself would write "-1", which the kernel refuses)
    daemon.docker("update", "--pids-limit", "50", "web")
    daemon.docker("update", "--cpu-shares", "256", "web")  # other updates keep the policy
    assert daemon.inspect("web")["HostConfig"]["RestartPolicy"]["Name"] == "on-failure"
    assert hc["CpuShares"] == 512 and hc["PidsLimit"] == 50
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    daemon.cli("restart", "-t", "0", "web")  # kept in HostConfig: applied at start again
    assert daemon.cli("exec", "web", "sh", "-c", LIMIT).stdout.strip() == str(128 << 20)
    daemon.cli("update", "--memory", "96m", "--cpus", "0.5", "web")
    assert daemon.cli("exec", "web", "sh", "-c", LIMIT).stdout.strip() == str(96 << 20)
    quota = daemon.cli("exec", "web", "sh", "-c", "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us"
                       " 2>/dev/null || cut -d' ' -f1 /sys/fs/cgroup/cpu.max").stdout.strip()
    assert quota == "50000"
    assert daemon.inspect("web")["HostConfig"]["NanoCpus"] == 500_000_000


def test_update_of_a_stopped_container_applies_at_its_start(daemon: PortsideDaemon) -> None:
    daemon.cli("create", "--name", "later", "busybox", "sh", "-c", LIMIT)
    daemon.docker("update", "-m", "64m", "later")
    assert daemon.cli("start", "-a", "later").stdout.strip() == str(64 << 20)


def test_update_refuses_bad_input(daemon: PortsideDaemon) -> None:
    daemon.cli("run", "-d", "--name", "web", "busybox", "sleep", "300")
    r = daemon.docker("update", "--memory", "1m", "web", check=False)
    assert r.returncode == 1 and "Minimum memory limit allowed is 6MB" in r.stderr
    r = daemon.docker("update", "--memory", "8m", "nosuch", check=False)
    assert r.returncode == 1 and "No such container: nosuch" in r.stderr


def test_rename_follows_on_the_network_and_refuses_a_taken_name(daemon: PortsideDaemon) -> None:
    daemon.cli("network", "create", "appnet")
    daemon.cli("run", "-d", "--name", "web", "--network", "appnet", "busybox",
               "sleep", "300")
    daemon.cli("run", "-d", "--name", "client", "--network", "appnet", "busybox",
               "sleep", "300")
    daemon.cli("run", "-d", "--name", "other", "busybox", "sleep", "300")
    r = daemon.docker("rename", "web", "other", check=False)
    assert r.returncode == 1 and 'The container name "/other" is already in use' in r.stderr
    since = daemon.docker("version", "-f", "{{.Server.Os}}").stdout  # a round trip first
    assert since.strip() == "linux"
    daemon.docker("rename", "web", "web2")
    assert daemon.inspect("web2")["Name"] == "/web2"
    r = daemon.docker("inspect", "web", check=False)
    assert r.returncode == 1
    ip = daemon.inspect("web2")["NetworkSettings"]["Networks"]["appnet"]["IPAddress"]
    out = daemon.cli("exec", "client", "nslookup", "web2").stdout
    assert ip in out
    r = daemon.cli("exec", "client", "nslookup", "web", check=False)
    assert ip not in r.stdout
    def renamed() -> bool:  # events are recorded a moment after the call returns
        return "/web web2" in daemon.docker(
            "events", "--since", "1m", "--until", "0s", "--filter", "event=rename",
            "--format", "{{.Actor.Attributes.oldName}} {{.Actor.Attributes.name}}").stdout

    daemon.wait_for(renamed, what="the rename event")
    daemon.cli("rename", "web2", "web3")  # the native verb
    assert daemon.inspect("web3")["Name"] == "/web3"
    r = daemon.cli("rename", "web3", "client", check=False)
    assert r.returncode != 0 and "already in use" in r.stderr


def test_update_through_runc_too(daemon: PortsideDaemon) -> None:
    daemon.cli("run", "-d", "--name", "web", "--runtime", "runc", "busybox", "sleep", "300")
    daemon.docker("update", "--memory", "48m", "--pids-limit", "20", "web")
    assert daemon.cli("exec", "web", "sh", "-c", LIMIT).stdout.strip() == str(48 << 20)
    assert daemon.cli("exec", "web", "cat", "/sys/fs/cgroup/pids/pids.max").stdout == "20\n"
    daemon.docker("update", "--pids-limit", "-1", "web")  # lifted again
    assert daemon.cli("exec", "web", "cat", "/sys/fs/cgroup/pids/pids.max").stdout == "max\n"
