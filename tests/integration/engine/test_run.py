"""`portside run` end to end through the daemon: output, exit codes, flags, bad input."""

from __future__ import annotations

import json

from helpers.daemon import PortsideDaemon


def test_run_rm_prints_output_and_leaves_nothing(daemon: PortsideDaemon) -> None:
    r = daemon.cli("run", "--rm", "busybox", "echo", "hello")
    assert r.stdout == "hello\n"
    assert daemon.cli("ps", "-aq").stdout == ""


def test_exit_codes_pass_through_like_docker(daemon: PortsideDaemon) -> None:
    assert daemon.cli("run", "--rm", "busybox", "sh", "-c", "exit 7", check=False).returncode == 7
    r = daemon.cli("run", "--rm", "busybox", "no-such-command", check=False)
    assert r.returncode == 127
    assert "executable file not found" in r.stderr
    assert daemon.cli("ps", "-aq").stdout == ""  # --rm also removes what failed to start
    r = daemon.cli("run", "--rm", "busybox", "/etc/passwd", check=False)
    assert r.returncode == 126
    r = daemon.cli("run", "--rm", "no-such-image", "true", check=False)
    assert r.returncode == 125
    assert "No such image: no-such-image" in r.stderr
    assert "Traceback" not in r.stderr


def test_stdout_and_stderr_stay_apart(daemon: PortsideDaemon) -> None:
    r = daemon.cli("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2")
    assert r.stdout == "out\n"
    assert r.stderr == "err\n"


def test_stdin_with_interactive(daemon: PortsideDaemon) -> None:
    r = daemon.cli("run", "--rm", "-i", "busybox", "head", "-n", "2",
                   input="line one\nline two\n")
    assert r.stdout == "line one\nline two\n"


def test_env_workdir_user_entrypoint_hostname(daemon: PortsideDaemon, tmp_path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nFROM_FILE=yes\n")
    r = daemon.cli("run", "--rm", "-e", "MODE=prod", "--env-file", str(env_file), "-w", "/tmp",
                   "-u", "nobody", "--hostname", "box", "busybox",
                   "sh", "-c", "echo $MODE $FROM_FILE $(pwd) $(id -u) $(hostname)")
    assert r.stdout.split() == ["prod", "yes", "/tmp", "65534", "box"]
    r = daemon.cli("run", "--rm", "--entrypoint", "echo", "busybox", "via", "entrypoint")
    assert r.stdout == "via entrypoint\n"
    r = daemon.cli("run", "--rm", "-u", "nosuchuser", "busybox", "true", check=False)
    assert r.returncode != 0 and "nosuchuser" in r.stderr


def test_default_hostname_is_the_short_id(daemon: PortsideDaemon) -> None:
    cid = daemon.cli("create", "busybox", "cat", "/etc/hostname").stdout.strip()
    r = daemon.cli("start", "-a", cid)
    assert r.stdout.strip() == cid[:12]


def test_name_in_use_is_a_conflict(daemon: PortsideDaemon) -> None:
    daemon.cli("create", "--name", "taken", "busybox", "true")
    r = daemon.cli("create", "--name", "taken", "busybox", "true", check=False)
    assert r.returncode == 125
    assert 'name "/taken" is already in use' in r.stderr
    assert len(daemon.cli("ps", "-aq").stdout.split()) == 1


def test_bad_flag_values_fail_before_anything_is_created(daemon: PortsideDaemon) -> None:
    for args in (["--memory", "lots"], ["--cpus", "x"], ["--restart", "sometimes"],
                 ["--mount", "type=bind,target=/x"], ["-v", "rel/path:/x"]):
        r = daemon.cli("run", *args, "busybox", "true", check=False)
        assert r.returncode != 0, args
        assert "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0, r.stderr
    assert daemon.cli("ps", "-aq").stdout == ""


def test_read_only_rootfs_and_tmpfs(daemon: PortsideDaemon) -> None:
    r = daemon.cli("run", "--rm", "--read-only", "--tmpfs", "/scratch", "busybox", "sh", "-c",
                   "touch /scratch/ok && echo tmpfs-ok; touch /nope", check=False)
    assert "tmpfs-ok" in r.stdout
    assert "Read-only file system" in r.stderr
    assert r.returncode == 1


def test_limits_are_recorded_and_enforced(daemon: PortsideDaemon) -> None:
    daemon.cli("run", "-d", "--name", "lim", "--memory", "64m", "--cpus", "0.5",
               "--pids-limit", "20", "busybox", "sleep", "300")
    hc = daemon.inspect("lim")["HostConfig"]
    assert hc["Memory"] == 64 * 1024 * 1024
    assert hc["NanoCpus"] == 500_000_000
    assert hc["PidsLimit"] == 20
    r = daemon.cli("exec", "lim", "sh", "-c",
                   "for i in $(seq 40); do sleep 30 </dev/null >/dev/null 2>&1 & done 2>&1; echo done", check=False)
    assert "can't fork" in r.stdout + r.stderr or "Resource temporarily unavailable" in (
        r.stdout + r.stderr)
    stats = daemon.cli("stats", "--no-stream", "--format", "json", "lim").stdout
    doc = json.loads(stats.splitlines()[0])
    assert doc["Name"] == "lim"
    assert doc["MemUsage"].endswith("/ 67.1MB")


def test_oom_kill_shows_in_inspect(daemon: PortsideDaemon) -> None:
    r = daemon.cli("run", "--name", "oom", "--memory", "16m", "--memory-swap", "16m", "busybox",
                   "sh", "-c", "x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo $x | wc -c",
                   check=False)
    assert r.returncode == 137
    state = daemon.inspect("oom")["State"]
    assert state["OOMKilled"] is True
    assert state["ExitCode"] == 137


def test_run_imports_stay_light(daemon: PortsideDaemon) -> None:
    """`run --rm` end to end imports no dataclasses, typing, json, click or the engine
    interface beyond what the interpreter itself loads (`-X importtime` lists them)."""
    import subprocess
    import sys

    def imported(*args: str) -> set[str]:
        r = subprocess.run([sys.executable, "-X", "importtime", *args], env=daemon.env,
                           capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
        return {line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines()
                if line.startswith("import time:")}

    loaded = imported("-m", "portside", "run", "--rm", "busybox", "true") - imported("-c", "0")
    assert "portside.client.runpath" in loaded
    assert loaded & {"dataclasses", "typing", "json", "click", "portside.engine.interface"} \
        == set()
