"""Container lifecycle through the Runtime with real conmon + crun/runc."""

from __future__ import annotations

import time

import pytest

from portside.errors import InvalidArgument
from portside.runtime import (
    CommandNotExecutable,
    CommandNotFound,
    ContainerExists,
    ContainerUnknown,
    InvalidState,
    Mount,
    UserUnknown,
)

from .conftest import Harness, leftover_mounts


def test_echo_hello_is_logged_and_exits_zero(harness: Harness) -> None:
    code, out, err = harness.run("echo", "hello")
    assert (code, out, err) == (0, "hello\n", "")


def test_exit_code_and_stderr_pass_through(harness: Harness) -> None:
    code, out, err = harness.run("sh", "-c", "echo out; echo oops >&2; exit 3")
    assert code == 3
    assert out == "out\n"
    assert err == "oops\n"


def test_command_not_found_is_127_and_leaves_nothing(harness: Harness) -> None:
    spec = harness.spec("no-such-command")
    with pytest.raises(CommandNotFound) as exc:
        harness.rt.create(spec)
    assert exc.value.exit_code == 127
    assert "no-such-command" in str(exc.value)
    assert "\n" not in str(exc.value)
    assert harness.rt.list() == []
    assert leftover_mounts(harness.rt.root) == []
    with pytest.raises(ContainerUnknown):
        harness.rt.state(spec.id)


def test_command_not_executable_is_126(harness: Harness) -> None:
    with pytest.raises(CommandNotExecutable) as exc:
        harness.rt.create(harness.spec("/usr/bin/notexec"))
    assert exc.value.exit_code == 126
    assert harness.rt.list() == []


def test_env_cwd_user_hostname(harness: Harness) -> None:
    code, out, _ = harness.run(
        "sh", "-c", 'echo "$MODE $HOME"; pwd; id; hostname',
        env=["MODE=prod"], cwd="/tmp", user="app", hostname="web1",
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "prod /home/app"
    assert lines[1] == "/tmp"
    assert lines[2].startswith("uid=1000(app) gid=1000(app)")
    assert "50(staff)" in lines[2] and "29(audio)" in lines[2]
    assert lines[3] == "web1"


def test_the_container_sees_only_its_own_environment(harness: Harness) -> None:
    # conmon and the runtime run with settings of ours (LD_BIND_NOW...); none may leak in.
    code, out, _ = harness.run("env", env=["MODE=prod"])
    assert code == 0
    names = sorted(line.partition("=")[0] for line in out.splitlines())
    assert names == ["HOME", "HOSTNAME", "MODE", "PATH"] or names == ["HOME", "MODE", "PATH"]


def test_numeric_user_and_group(harness: Harness) -> None:
    code, out, _ = harness.run("id", "-u", user="4242:staff")
    assert (code, out) == (0, "4242\n")
    code, out, _ = harness.run("id", "-g", user="4242:staff")
    assert out == "50\n"


def test_unknown_user_is_a_clear_error(harness: Harness) -> None:
    with pytest.raises(UserUnknown, match="ghost"):
        harness.rt.create(harness.spec("true", user="ghost"))
    assert harness.rt.list() == []


def test_duplicate_id_conflicts(harness: Harness) -> None:
    spec = harness.spec("true")
    harness.rt.create(spec)
    with pytest.raises(ContainerExists):
        harness.rt.create(spec)
    harness.rt.delete(spec.id)


def test_states_pause_resume_stop(harness: Harness) -> None:
    spec = harness.spec("sleep", "100")
    rt = harness.rt
    rt.create(spec)
    assert rt.state(spec.id).status == "created"
    assert rt.state(spec.id).pid > 0
    rt.start(spec.id)
    st = rt.state(spec.id)
    assert st.status == "running" and st.started_at is not None
    with pytest.raises(InvalidState):
        rt.start(spec.id)
    rt.pause(spec.id)
    assert rt.state(spec.id).status == "paused"
    rt.resume(spec.id)
    assert rt.state(spec.id).status == "running"
    with pytest.raises(InvalidState):
        rt.delete(spec.id)
    # sleep as PID 1 has no SIGTERM handler: the kernel ignores it, SIGKILL follows.
    assert rt.stop(spec.id, timeout=1) == 137
    st = rt.state(spec.id)
    assert st.status == "stopped" and st.exit_code == 137 and not st.oom_killed
    assert st.finished_at is not None and st.finished_at >= (st.started_at or 0)
    rt.delete(spec.id)
    assert spec.id not in rt.list()


def test_stop_with_handled_signal_exits_cleanly(harness: Harness) -> None:
    spec = harness.spec("sh", "-c", "trap 'echo bye; exit 0' TERM; while :; do sleep 0.1; done")
    harness.rt.create(spec)
    harness.rt.start(spec.id)
    time.sleep(0.3)  # let the shell install its trap
    assert harness.rt.stop(spec.id, timeout=20) == 0
    assert harness.output(spec.id)[0] == "bye\n"


def test_stop_signal_from_spec(harness: Harness) -> None:
    spec = harness.spec("sh", "-c", "trap 'exit 7' USR1; while :; do sleep 0.1; done",
                        stop_signal="SIGUSR1")
    harness.rt.create(spec)
    harness.rt.start(spec.id)
    time.sleep(0.3)
    assert harness.rt.stop(spec.id, timeout=20) == 7


def test_kill_paused_container(harness: Harness) -> None:
    spec = harness.spec("sleep", "100")
    harness.rt.create(spec)
    harness.rt.start(spec.id)
    harness.rt.pause(spec.id)
    harness.rt.kill(spec.id, "KILL")
    assert harness.rt.wait(spec.id, 30) == 137


def test_delete_created_container_without_start(harness: Harness) -> None:
    spec = harness.spec("true")
    harness.rt.create(spec)
    harness.rt.delete(spec.id)
    assert harness.rt.list() == []


def test_force_delete_running(harness: Harness) -> None:
    spec = harness.spec("sleep", "100")
    harness.rt.create(spec)
    harness.rt.start(spec.id)
    harness.rt.delete(spec.id, force=True)
    assert harness.rt.list() == []


def test_wait_timeout(harness: Harness) -> None:
    spec = harness.spec("sleep", "100")
    harness.rt.create(spec)
    harness.rt.start(spec.id)
    with pytest.raises(TimeoutError):
        harness.rt.wait(spec.id, timeout=0.2)
    harness.rt.delete(spec.id, force=True)


def test_init_runs_tini_as_pid1(harness: Harness) -> None:
    code, out, _ = harness.run("sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$",
                               init=True)
    assert code == 0
    first, second = out.splitlines()
    assert first.startswith("/sbin/docker-init -- sh")
    assert second != "1"


def test_read_only_root_with_tmpfs(harness: Harness) -> None:
    code, out, err = harness.run(
        "sh", "-c", "touch /etc/x || echo ro; echo ok > /tmp/f && cat /tmp/f",
        read_only=True, mounts=[Mount("/tmp", "tmpfs", "tmpfs", ["size=1m"])],
    )
    assert code == 0
    assert out == "ro\nok\n"
    assert "Read-only file system" in err


def test_writes_go_to_the_upper_dir(harness: Harness) -> None:
    spec = harness.spec("sh", "-c", "echo data > /root/new; rm /etc/group")
    harness.rt.create(spec)
    harness.rt.start(spec.id)
    assert harness.rt.wait(spec.id, 30) == 0
    upper = harness.rt.upperdir(spec.id)
    assert (upper / "root" / "new").read_text() == "data\n"
    # overlayfs whiteout for the deleted file (a 0/0 character device)
    assert (upper / "etc" / "group").is_char_device()
    assert (harness.layers[0] / "etc" / "group").exists()
    harness.rt.delete(spec.id)


def test_bind_mount_ro_and_rw(harness: Harness, tmp_path: object) -> None:
    from pathlib import Path

    base = Path(str(tmp_path))
    rw, ro = base / "rw", base / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "conf").write_text("setting=1\n")
    code, out, _ = harness.run(
        "sh", "-c", "cat /conf/conf; echo x > /conf/y || echo denied; echo d > /data/out",
        mounts=[Mount("/conf", "bind", str(ro), ["ro"]), Mount("/data", "bind", str(rw))],
    )
    assert code == 0
    assert out == "setting=1\ndenied\n"
    assert (rw / "out").read_text() == "d\n"
    assert not (ro / "y").exists()


def test_missing_bind_source_is_rejected(harness: Harness) -> None:
    with pytest.raises(InvalidArgument, match="does not exist"):
        harness.rt.create(harness.spec("true", mounts=[Mount("/x", "bind", "/nonexistent/dir")]))
    assert harness.rt.list() == []
    assert leftover_mounts(harness.rt.root) == []


def test_plain_directory_rootfs(harness: Harness, tmp_path: object) -> None:
    import shutil
    from pathlib import Path

    rootfs = Path(str(tmp_path)) / "rootfs"
    shutil.copytree(harness.layers[1], rootfs, symlinks=True)
    shutil.copytree(harness.layers[0], rootfs, symlinks=True, dirs_exist_ok=True)
    spec = harness.spec("sh", "-c", "echo hi > /root/f", rootfs_path=rootfs)
    spec.lowerdirs = []
    harness.rt.create(spec)
    harness.rt.start(spec.id)
    assert harness.rt.wait(spec.id, 30) == 0
    harness.rt.delete(spec.id)
    assert (rootfs / "root" / "f").read_text() == "hi\n"


def test_stats_and_processes(harness: Harness) -> None:
    from portside.runtime import Resources

    spec = harness.spec("sh", "-c", "sleep 100 & sleep 100",
                        resources=Resources(memory=64 << 20, pids_limit=50))
    rt = harness.rt
    rt.create(spec)
    rt.start(spec.id)
    deadline = time.time() + 10
    while [p["cmd"] for p in rt.processes(spec.id)].count("sleep 100") < 2 \
            and time.time() < deadline:
        time.sleep(0.05)
    procs = rt.processes(spec.id)
    cmds = [p["cmd"] for p in procs]
    assert cmds.count("sleep 100") == 2, cmds
    s = rt.stats(spec.id)
    assert s["memory_limit"] == 64 << 20
    assert s["pids_limit"] == 50
    assert s["pids_current"] == len(procs)
    assert s["memory_usage"] > 0
    assert s["cpu_usage_ns"] > 0
    rt.delete(spec.id, force=True)


def test_log_rotation_keeps_max_file_generations(harness: Harness) -> None:
    script = ("i=0; while [ $i -lt 300 ]; do "
              "echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); "
              "[ $((i % 20)) = 0 ] && sleep 0.05; done")
    spec = harness.spec("sh", "-c", script, log_max_size=4096, log_max_file=3)
    rt = harness.rt
    rt.create(spec)
    rt.start(spec.id)
    assert rt.wait(spec.id, 60) == 0
    log = rt.log_path(spec.id)
    rotated = sorted(p.name for p in log.parent.glob(log.name + ".*"))
    assert rotated, "the log was never rotated"
    sizes = [p.stat().st_size for p in log.parent.glob(log.name + "*")]
    assert len(sizes) <= 3
    assert max(sizes) <= 4096 + 4096 // 4  # rotated at max-size, cut when a burst passes it
    lines = harness.output(spec.id)[0].splitlines()
    # The newest lines survive, in order, up to the last one; the oldest are gone.
    assert lines[-1].startswith("line-299-")
    numbers = [int(line.split("-")[1]) for line in lines]
    assert numbers == sorted(numbers)
    assert numbers[0] > 0
    assert len(lines) > 4096 // 80  # more than the current file alone holds
    rt.delete(spec.id)


def test_update_limits_and_exit_fd(harness: Harness) -> None:
    import select

    from portside.runtime import Resources

    spec = harness.spec("sleep", "100", resources=Resources(memory=64 << 20))
    rt = harness.rt
    rt.create(spec)
    rt.start(spec.id)
    rt.update(spec.id, Resources(memory=96 << 20, pids_limit=20))
    s = rt.stats(spec.id)
    assert s["memory_limit"] == 96 << 20 and s["pids_limit"] == 20
    fd = rt.exit_fd(spec.id)
    assert fd is not None
    try:
        assert select.select([fd], [], [], 0)[0] == []
        rt.kill(spec.id, "KILL")
        assert select.select([fd], [], [], 30)[0] == [fd]
    finally:
        import os

        os.close(fd)
    assert rt.state(spec.id).exit_code == 137
    assert rt.exit_fd(spec.id) is None
    rt.delete(spec.id)


def test_many_layers_beyond_one_page_of_mount_options(harness: Harness, tmp_path: object
                                                      ) -> None:
    from pathlib import Path

    base = Path(str(tmp_path)) / ("long-layer-directory-name-" * 3)
    layers = []
    for i in range(60):
        layer = base / f"layer-{i:03d}-{'x' * 40}"
        (layer / "layers").mkdir(parents=True)
        (layer / "layers" / f"f{i:03d}").write_text(f"{i}\n")
        layers.append(layer)
    assert len(":".join(str(p) for p in layers)) > 4096
    spec = harness.spec("sh", "-c", "cat /layers/* | wc -l; cat /layers/f000 /layers/f059")
    spec.lowerdirs = layers[::-1] + spec.lowerdirs
    harness.rt.create(spec)
    harness.rt.start(spec.id)
    assert harness.rt.wait(spec.id, 30) == 0
    assert harness.output(spec.id)[0].split() == ["60", "0", "59"]
    harness.rt.delete(spec.id)


def test_unknown_runtime_is_rejected_and_leaves_nothing(harness: Harness) -> None:
    from portside.runtime import UnknownRuntime

    spec = harness.spec("true")
    spec.runtime = "kata"
    with pytest.raises(UnknownRuntime, match="kata"):
        harness.rt.create(spec)
    assert harness.rt.list() == []
    assert leftover_mounts(harness.rt.root) == []


def test_follow_logs_until_exit(harness: Harness) -> None:
    import os

    from portside.runtime import read_logs

    spec = harness.spec("sh", "-c", "for i in 1 2 3; do echo n$i; sleep 0.2; done; echo e >&2")
    rt = harness.rt
    rt.create(spec)
    fd = rt.exit_fd(spec.id)
    assert fd is not None
    rt.start(spec.id)
    try:
        got = [(e.stream, e.data) for e in read_logs(rt.log_path(spec.id), follow=True,
                                                      stop_fd=fd, poll_interval=5)]
    finally:
        os.close(fd)
    assert got == [("stdout", b"n1\n"), ("stdout", b"n2\n"), ("stdout", b"n3\n"),
                   ("stderr", b"e\n")]
    rt.delete(spec.id)
