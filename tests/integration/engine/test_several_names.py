"""Commands over several names act on each, report each failure on one line, exit 1."""

from __future__ import annotations

import json

from helpers.daemon import PortsideDaemon


def test_rm_of_several_with_one_unknown(daemon: PortsideDaemon) -> None:
    daemon.cli("create", "--name", "one", "busybox", "true")
    daemon.cli("create", "--name", "two", "busybox", "true")
    r = daemon.cli("rm", "one", "nosuch", "two", check=False)
    assert r.returncode == 1
    assert r.stdout.split() == ["one", "two"]
    assert len(r.stderr.strip().splitlines()) == 1 and "nosuch" in r.stderr
    assert daemon.cli("ps", "-aq").stdout == ""


def test_volume_inspect_prints_what_it_found(daemon: PortsideDaemon) -> None:
    daemon.cli("volume", "create", "data")
    r = daemon.cli("volume", "inspect", "data", "nosuch", check=False)
    assert r.returncode == 1
    assert [v["Name"] for v in json.loads(r.stdout)] == ["data"]
    assert "nosuch" in r.stderr
    daemon.cli("volume", "rm", "data")
