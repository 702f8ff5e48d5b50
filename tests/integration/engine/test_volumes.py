"""Volumes and mounts through the CLI: named volumes with copy-up, binds, --mount, rm -v, prune."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.daemon import PortsideDaemon


def test_named_volume_is_created_on_first_use_and_outlives_the_container(
        daemon: PortsideDaemon) -> None:
    daemon.cli("run", "--rm", "-v", "data:/data", "busybox", "sh", "-c", "echo kept > /data/f")
    assert "data" in daemon.cli("volume", "ls", "-q").stdout.split()
    r = daemon.cli("run", "--rm", "-v", "data:/data", "busybox", "cat", "/data/f")
    assert r.stdout == "kept\n"
    doc = json.loads(daemon.cli("volume", "inspect", "data").stdout)[0]
    assert doc["Driver"] == "local" and doc["Name"] == "data"
    assert Path(doc["Mountpoint"], "f").read_text() == "kept\n"


def test_empty_volume_gets_the_image_content(daemon: PortsideDaemon) -> None:
    r = daemon.cli("run", "--rm", "-v", "etc:/etc", "busybox", "cat", "/etc/passwd")
    assert "root:x:0:0" in r.stdout
    r = daemon.cli("run", "--rm", "--mount", "type=volume,source=bare,target=/etc,volume-nocopy",
                   "busybox", "ls", "/etc")
    assert "passwd" not in r.stdout


def test_bind_mounts_read_only_and_missing_sources(daemon: PortsideDaemon, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "app.ini").write_text("x=1\n")
    r = daemon.cli("run", "--rm", "-v", f"{conf}:/conf:ro", "busybox", "sh", "-c",
                   "cat /conf/app.ini; touch /conf/new", check=False)
    assert r.stdout == "x=1\n" and "Read-only file system" in r.stderr
    assert not (conf / "new").exists()
    daemon.cli("run", "--rm", "--mount", f"type=bind,source={conf},target=/c", "busybox",
               "touch", "/c/written")
    assert (conf / "written").exists()
    missing = tmp_path / "missing"
    r = daemon.cli("run", "--rm", "--mount", f"type=bind,source={missing},target=/m", "busybox",
                   "true", check=False)
    assert r.returncode == 125 and "bind source path does not exist" in r.stderr
    assert daemon.cli("ps", "-aq").stdout == ""
    daemon.cli("run", "--rm", "-v", f"{missing}:/m", "busybox", "true")  # -v creates it
    assert missing.is_dir()


def test_rm_v_removes_anonymous_volumes_only(daemon: PortsideDaemon) -> None:
    daemon.cli("run", "--name", "anon", "-v", "/scratch", "-v", "named:/named", "busybox", "true")
    vols = daemon.cli("volume", "ls", "-q").stdout.split()
    assert "named" in vols and len(vols) == 2
    daemon.cli("rm", "-v", "anon")
    assert daemon.cli("volume", "ls", "-q").stdout.split() == ["named"]


def test_volume_rm_refuses_in_use_and_prune_rules(daemon: PortsideDaemon) -> None:
    daemon.cli("volume", "create", "busy")
    daemon.cli("volume", "create", "idle")
    daemon.cli("run", "-d", "--name", "user", "-v", "busy:/b", "busybox", "sleep", "300")
    r = daemon.cli("volume", "rm", "busy", check=False)
    assert r.returncode == 1 and "volume is in use" in r.stderr
    daemon.cli("run", "--name", "anon2", "-v", "/tmpvol", "busybox", "true")
    daemon.cli("rm", "anon2")  # its anonymous volume is left unused
    daemon.cli("volume", "prune", "-f")
    left = daemon.cli("volume", "ls", "-q").stdout.split()
    assert sorted(left) == ["busy", "idle"]  # named volumes stay without --all
    daemon.cli("volume", "prune", "-f", "--all")
    assert daemon.cli("volume", "ls", "-q").stdout.split() == ["busy"]
    daemon.cli("rm", "-f", "user")
    daemon.cli("volume", "rm", "busy")
    assert daemon.cli("volume", "ls", "-q").stdout == ""

