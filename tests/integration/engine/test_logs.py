"""Logs: size-based rotation keeps the most recent lines like Docker (about max-size times
max-file bytes, nothing missing in between), restarts append, and `rm` takes every file."""

from __future__ import annotations

from helpers.daemon import PortsideDaemon


def _tail_is_contiguous(lines: list[str], last: int) -> None:
    numbers = [int(x) for x in lines]
    assert numbers == list(range(last - len(numbers) + 1, last + 1))


def test_rotation_keeps_the_most_recent_lines(daemon: PortsideDaemon) -> None:
    daemon.cli("run", "--name", "chatty", "--log-opt", "max-size=2k", "--log-opt",
               "max-file=2", "busybox", "seq", "1", "5000")
    # A k8s-file record of "NNNN\n" is ~50 bytes: a 2 KiB file holds ~40 lines, two ~80.
    daemon.wait_for(lambda: len(daemon.cli("logs", "chatty").stdout.split()) <= 100,
                    what="rotation of the burst")
    lines = daemon.cli("logs", "chatty").stdout.split()
    _tail_is_contiguous(lines, 5000)
    assert len(lines) >= 35, len(lines)
    files = [p for p in daemon.root.rglob("ctr.log*")]
    assert len(files) <= 2 and sum(p.stat().st_size for p in files) <= 2 * 2048 + 100


def test_slow_output_rotates_without_losing_lines(daemon: PortsideDaemon) -> None:
    daemon.cli("run", "--name", "steady", "--log-opt", "max-size=2k", "--log-opt",
               "max-file=3", "busybox", "sh", "-c",
               "i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo $i; usleep 2000; done")
    lines = daemon.cli("logs", "steady").stdout.split()
    _tail_is_contiguous(lines, 300)
    assert len(lines) >= 2 * 35, len(lines)  # two full older files at least
    files = [p for p in daemon.root.rglob("ctr.log*")]
    assert len(files) <= 3


def test_restart_appends_and_rm_removes_every_log_file(daemon: PortsideDaemon) -> None:
    cid = daemon.cli("run", "--name", "twice", "--log-opt", "max-size=2k", "--log-opt",
                     "max-file=2", "busybox", "echo", "run").stdout.strip()
    daemon.cli("start", "-a", "twice")
    assert daemon.cli("logs", "twice").stdout == "run\nrun\n"
    cid = daemon.inspect("twice")["Id"]
    logs = list(daemon.root.rglob("ctr.log*"))
    assert logs
    daemon.cli("rm", "twice")
    assert [p for p in logs if p.exists()] == []
    assert list(daemon.root.rglob(f"*{cid}*")) == []
