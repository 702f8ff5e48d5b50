"""A container's filesystem changes live until `rm`, as in Docker: restart and stop/start
keep them; `rm` leaves no directory behind."""

from __future__ import annotations

from helpers.daemon import PortsideDaemon


def _leftovers(daemon: PortsideDaemon, cid: str) -> list[str]:
    return [str(p) for p in daemon.root.rglob(f"*{cid}*")]


def test_changes_survive_restart_and_stop_start_until_rm(daemon: PortsideDaemon) -> None:
    cid = daemon.cli("run", "-d", "--name", "keeper", "busybox", "sleep", "300").stdout.strip()
    daemon.cli("exec", "keeper", "sh", "-c", "echo kept > /data.txt; rm /etc/group")
    daemon.cli("restart", "-t", "0", "keeper")
    assert daemon.cli("exec", "keeper", "cat", "/data.txt").stdout == "kept\n"
    daemon.cli("stop", "-t", "0", "keeper")
    diff = daemon.cli("diff", "keeper").stdout.split("\n")
    assert "A /data.txt" in diff and "D /etc/group" in diff  # a stopped container's changes
    daemon.cli("start", "keeper")
    assert daemon.cli("exec", "keeper", "cat", "/data.txt").stdout == "kept\n"
    r = daemon.cli("exec", "keeper", "test", "-e", "/etc/group", check=False)
    assert r.returncode == 1  # deletions persist too
    daemon.cli("rm", "-f", "keeper")
    assert _leftovers(daemon, cid) == []


def test_a_new_container_starts_from_the_image(daemon: PortsideDaemon) -> None:
    daemon.cli("run", "--name", "first", "busybox", "sh", "-c", "echo x > /mark")
    r = daemon.cli("run", "--rm", "busybox", "test", "-e", "/mark", check=False)
    assert r.returncode == 1
    assert "A /mark" in daemon.cli("diff", "first").stdout.split("\n")
    cid = daemon.inspect("first")["Id"]
    daemon.cli("rm", "first")
    assert _leftovers(daemon, cid) == []
