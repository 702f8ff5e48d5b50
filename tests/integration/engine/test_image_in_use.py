"""The image store and containers together: an image a container uses is never removed."""

from __future__ import annotations

from helpers.daemon import PortsideDaemon


def test_rmi_refuses_an_image_a_container_uses(daemon: PortsideDaemon) -> None:
    daemon.cli("run", "-d", "--name", "holder", "busybox", "sleep", "60")
    refused = daemon.cli("rmi", "busybox", check=False)
    assert refused.returncode != 0
    assert "container" in refused.stderr and "is using its referenced image" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
    assert "busybox" in daemon.cli("images").stdout

    # -f takes the name away but the content stays while the container needs it
    daemon.cli("rmi", "-f", "busybox")
    assert "busybox" not in daemon.cli("images").stdout
    daemon.cli("image", "prune", "-a", "-f")
    assert daemon.cli("exec", "holder", "echo", "still here").stdout == "still here\n"
    assert "<none>" in daemon.cli("images").stdout

    daemon.cli("rm", "-f", "holder")
    daemon.cli("image", "prune", "-a", "-f")
    assert daemon.cli("images", "-q").stdout == ""
