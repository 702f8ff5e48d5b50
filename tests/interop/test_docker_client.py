"""The real docker client (28.x) against portside's daemon: run, ps, logs, exec, stop, rm,
inspect, version, volumes. The daemon speaks the Docker Engine API; nothing is adapted."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers.daemon import PortsideDaemon

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("docker") is None, reason="docker client not installed"),
]


def test_version_negotiates(daemon: PortsideDaemon) -> None:
    out = daemon.docker("version", "--format", "{{json .}}").stdout
    doc = json.loads(out)
    assert doc["Server"]["ApiVersion"] == "1.43"
    assert doc["Client"]["ApiVersion"] == "1.43"  # negotiated down to ours


def test_run_attached_with_exit_code_and_streams(daemon: PortsideDaemon) -> None:
    r = daemon.docker("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 5",
                      check=False)
    assert r.returncode == 5
    assert r.stdout == "out\n"
    assert "err\n" in r.stderr
    r = daemon.docker("run", "--rm", "busybox", "nosuchcommand", check=False)
    assert r.returncode == 127
    assert daemon.docker("ps", "-aq").stdout == ""


def test_run_detached_ps_logs_exec_stop_rm_inspect(daemon: PortsideDaemon) -> None:
    cid = daemon.docker("run", "-d", "--name", "web", "-e", "MODE=prod", "-l", "tier=front",
                        "busybox", "sh", "-c", "echo ready; sleep 300").stdout.strip()
    assert len(cid) == 64
    ps = daemon.docker("ps", "--format", "{{.ID}} {{.Names}} {{.Status}}").stdout
    assert ps.startswith(f"{cid[:12]} web Up")
    assert daemon.docker("ps", "--filter", "label=tier=front", "-q").stdout.strip() == cid[:12]
    daemon.wait_for(lambda: daemon.docker("logs", "web").stdout == "ready\n", what="log line")
    r = daemon.docker("exec", "web", "sh", "-c", "echo $MODE; exit 2", check=False)
    assert r.returncode == 2 and r.stdout == "prod\n"
    r = daemon.docker("exec", "-i", "web", "cat", input="through stdin\n")
    assert r.stdout == "through stdin\n"
    doc = json.loads(daemon.docker("inspect", "web").stdout)[0]
    assert doc["Id"] == cid and doc["State"]["Running"] is True
    assert "MODE=prod" in doc["Config"]["Env"]
    assert daemon.docker("inspect", "-f", "{{.Config.Labels.tier}}", "web").stdout == "front\n"
    daemon.docker("stop", "-t", "1", "web")
    assert daemon.docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}",
                         "web").stdout == "exited 137\n"
    daemon.docker("rm", "web")
    r = daemon.docker("inspect", "web", check=False)
    assert r.returncode != 0 and "No such" in r.stderr
    # and portside sees the same state
    assert daemon.cli("ps", "-aq").stdout == ""


def test_errors_are_docker_shaped(daemon: PortsideDaemon) -> None:
    daemon.docker("create", "--name", "dup", "busybox", "true")
    r = daemon.docker("create", "--name", "dup", "busybox", "true", check=False)
    assert r.returncode != 0 and "is already in use" in r.stderr
    r = daemon.docker("stop", "nope", check=False)
    assert r.returncode != 0 and "No such container: nope" in r.stderr


def test_volumes_and_images(daemon: PortsideDaemon) -> None:
    daemon.docker("volume", "create", "vol1")
    assert "vol1" in daemon.docker("volume", "ls", "-q").stdout.split()
    r = daemon.docker("run", "--rm", "-v", "vol1:/v", "busybox", "sh", "-c",
                      "echo hi > /v/x && cat /v/x")
    assert r.stdout == "hi\n"
    daemon.docker("volume", "rm", "vol1")
    images = daemon.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout
    assert "busybox:latest" in images


def test_run_it_in_a_terminal(daemon: PortsideDaemon) -> None:
    import fcntl
    import os
    import select
    import struct
    import subprocess
    import termios
    import time

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 31, 91, 0, 0))
    env = {k: v for k, v in daemon.env.items() if not k.startswith("DOCKER_")}
    env["DOCKER_CONFIG"] = str(daemon.sockdir / "docker-config")
    proc = subprocess.Popen(["docker", "-H", f"unix://{daemon.socket}", "run", "-it", "--rm",
                             "busybox", "sh"], env=env, stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True)
    os.close(slave)
    out, script = bytearray(), [b"stty size; echo $((7*6))\r", b"exit 4\r"]
    deadline, last = time.monotonic() + 60, 0.0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    out += os.read(master, 65536)
                except OSError:
                    break
            elif script and b"#" in out and time.monotonic() - last > 0.5:
                os.write(master, script.pop(0))
                last = time.monotonic()
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert code == 4, bytes(out)
    assert b"31 91" in out and b"42" in out


def test_networks_connect_disconnect_and_aliases(daemon: PortsideDaemon) -> None:
    daemon.docker("network", "create", "--subnet", "10.241.10.0/24", "dk-a")
    daemon.docker("network", "create", "--subnet", "10.241.11.0/24", "dk-b")
    daemon.docker("run", "-d", "--name", "svc", "--network", "dk-a", "--network-alias", "api",
                  "--ip", "10.241.10.9", "busybox", "sleep", "300")
    r = daemon.docker("run", "--rm", "--network", "dk-a", "busybox", "nslookup", "api")
    assert "10.241.10.9" in r.stdout
    daemon.docker("network", "connect", "dk-b", "svc")
    addrs = daemon.docker("exec", "svc", "ip", "-4", "-o", "addr").stdout
    assert "10.241.10.9/" in addrs and "10.241.11." in addrs
    nets = json.loads(daemon.docker("inspect", "svc", "--format",
                                    "{{json .NetworkSettings.Networks}}").stdout)
    assert set(nets) == {"dk-a", "dk-b"}
    r = daemon.docker("run", "--rm", "--network", "dk-b", "busybox", "ping", "-c1", "-W5", "svc")
    assert "1 packets received" in r.stdout
    daemon.docker("restart", "-t", "0", "svc")  # Docker keeps connected networks
    addrs = daemon.docker("exec", "svc", "ip", "-4", "-o", "addr").stdout
    assert "10.241.10.9/" in addrs and "10.241.11." in addrs
    daemon.docker("network", "disconnect", "dk-b", "svc")
    assert "10.241.11." not in daemon.docker("exec", "svc", "ip", "-4", "-o", "addr").stdout
    daemon.docker("restart", "-t", "0", "svc")
    assert "10.241.11." not in daemon.docker("exec", "svc", "ip", "-4", "-o", "addr").stdout
    daemon.docker("create", "--name", "later", "--network", "dk-a", "busybox", "sleep", "300")
    daemon.docker("network", "connect", "--alias", "lb", "dk-b", "later")  # not running
    daemon.docker("start", "later")
    r = daemon.docker("run", "--rm", "--network", "dk-b", "busybox", "nslookup", "lb")
    assert "10.241.11." in r.stdout
    daemon.docker("rm", "-f", "later")
    r = daemon.docker("network", "rm", "dk-a", check=False)
    assert r.returncode != 0 and "active endpoints" in r.stderr
    daemon.docker("rm", "-f", "svc")
    daemon.docker("network", "rm", "dk-a", "dk-b")
