"""`diff` and `commit`: a container's changes, and a new image made of them."""

from __future__ import annotations

from helpers.daemon import PortsideDaemon


def test_diff_and_commit(daemon: PortsideDaemon) -> None:
    daemon.cli("run", "--name", "chg", "busybox", "sh", "-c",
               "echo new > /etc/new; rm /bin/vi; mkdir /data; echo x > /data/f")
    diff = daemon.cli("diff", "chg").stdout.splitlines()
    for line in ("A /etc/new", "D /bin/vi", "A /data", "A /data/f", "C /etc"):
        assert line in diff
    assert "A /etc/hosts" not in diff
    image_id = daemon.cli("commit", "-m", "files", "chg", "mine:v1").stdout.strip()
    assert image_id.startswith("sha256:")
    r = daemon.cli("run", "--rm", "mine:v1", "sh", "-c",
                   "cat /etc/new /data/f; ls /bin/vi; grep -c localhost /etc/hosts", check=False)
    assert r.stdout.splitlines()[:2] == ["new", "x"]
    assert "No such file" in r.stderr
    assert r.stdout.splitlines()[2] != "0"
    daemon.cli("rm", "chg")
