"""`docker info|version|system df|system prune|export|import` and the native verbs, with
the figures checked against the host and the engine's own state."""

from __future__ import annotations

import io
import json
import os
import platform
import subprocess
import sys
import tarfile
from pathlib import Path

from helpers.daemon import PortsideDaemon


def test_docker_info_and_version_show_real_figures(daemon: PortsideDaemon) -> None:
    daemon.cli("run", "-d", "--name", "web", "busybox", "sleep", "300")
    daemon.cli("create", "--name", "idle", "busybox", "true")
    info = json.loads(daemon.docker("info", "--format", "{{json .}}").stdout)
    assert (info["Containers"], info["ContainersRunning"], info["ContainersStopped"]) == (2, 1, 1)
    assert info["Images"] == 1 and info["Driver"] == "overlay2"
    assert info["NCPU"] == len(os.sched_getaffinity(0))
    assert info["MemTotal"] == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert info["KernelVersion"] == platform.release()
    assert info["DockerRootDir"] == str(daemon.root)
    assert info["CgroupVersion"] in ("1", "2") and info["CgroupDriver"] == "cgroupfs"
    assert info["DefaultRuntime"] in info["Runtimes"]
    assert any("seccomp" in o for o in info["SecurityOptions"])
    text = daemon.docker("info").stdout
    assert " Containers: 2" in text and " Storage Driver: overlay2" in text
    version = json.loads(daemon.docker("version", "--format", "{{json .Server}}").stdout)
    assert version["ApiVersion"] == "1.43" and version["Os"] == "linux"
    assert {c["Name"] for c in version["Components"]} >= {"Engine", "conmon"}
    native = daemon.cli("info").stdout
    assert " Running: 1" in native and f" Docker Root Dir: {daemon.root}" in native
    assert "Engine:" in daemon.cli("version").stdout
    assert daemon.cli("system", "info", "--format", "{{.Images}}").stdout.strip() == "1"


def test_system_df_and_prune(daemon: PortsideDaemon) -> None:
    daemon.cli("run", "-d", "--name", "web", "-v", "keep:/keep", "busybox", "sleep", "300")
    daemon.cli("run", "--name", "done", "-v", "/anon", "busybox", "sh", "-c",
               "head -c 300000 /dev/zero > /big; echo x > /anon/f")
    daemon.cli("network", "create", "unused")
    df = json.loads(subprocess.run(
        ["curl", "-s", "--unix-socket", str(daemon.socket), "http://d/v1.43/system/df"],
        capture_output=True, text=True, check=True).stdout)
    by_name = {c["Names"][0]: c for c in df["Containers"]}
    assert by_name["/done"]["SizeRw"] >= 300000
    sized = json.loads(daemon.docker("inspect", "-s", "-f", "{{json .SizeRw}}", "done").stdout)
    assert sized == by_name["/done"]["SizeRw"]
    ps = daemon.docker("ps", "-a", "-s", "--format", "{{.Names}} {{.Size}}").stdout
    assert "done 300kB" in ps
    assert df["Images"][0]["Containers"] == 2 and df["LayersSize"] > 0
    volumes = {v["Name"]: v["UsageData"] for v in df["Volumes"]}
    assert volumes["keep"]["RefCount"] == 1
    out = daemon.docker("system", "df").stdout
    assert out.splitlines()[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert out.splitlines()[2].split()[:3] == ["Containers", "2", "1"]
    assert "Local Volumes" in daemon.cli("system", "df").stdout
    r = daemon.docker("system", "prune", "-f", "--volumes")
    assert "Deleted Containers:" in r.stdout and by_name["/done"]["Id"] in r.stdout
    assert "Deleted Networks:" in r.stdout and "unused" in r.stdout
    assert "Total reclaimed space:" in r.stdout
    names = daemon.cli("ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert names == ["web"]
    assert "unused" not in daemon.cli("network", "ls").stdout
    assert "keep" in daemon.cli("volume", "ls", "-q").stdout  # named and used: kept
    daemon.cli("run", "--name", "again", "busybox", "true")
    r = daemon.cli("system", "prune", input="n\n")  # Docker's question; "n" keeps all
    assert "Are you sure you want to continue?" in r.stdout
    assert "again" in daemon.cli("ps", "-a").stdout
    r = daemon.cli("system", "prune", "-f")
    assert "Deleted Containers:" in r.stdout and "Total reclaimed space:" in r.stdout
    assert "again" not in daemon.cli("ps", "-a").stdout


def test_export_and_import_round_trip(daemon: PortsideDaemon, tmp_path: Path) -> None:
    daemon.cli("run", "--name", "web", "-v", "/vol", "busybox", "sh", "-c",
               "echo exported > /etc/motd; echo secret > /vol/in-volume")
    out = tmp_path / "fs.tar"
    with open(out, "wb") as f:
        subprocess.run(["docker", "-H", f"unix://{daemon.socket}", "export", "web"],
                       stdout=f, check=True, timeout=120,
                       env={k: v for k, v in daemon.env.items() if not k.startswith("DOCKER_")})
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
        member = tar.extractfile("etc/motd")
        assert member is not None and member.read() == b"exported\n"
    assert "bin/busybox" in names and "vol/in-volume" not in names  # volumes are not exported
    daemon.cli("start", "web")
    daemon.cli("run", "-d", "--name", "live", "busybox", "sh", "-c",
               "echo live > /live.txt; exec sleep 300")
    daemon.cli("exec", "live", "cat", "/live.txt")
    for name, path in (("web", "etc/motd"), ("live", "live.txt")):  # also while running
        daemon.cli("export", "-o", str(tmp_path / "native.tar"), name)
        with tarfile.open(tmp_path / "native.tar") as tar:
            names = set(tar.getnames())
            assert path in names and "proc/self" not in names and "vol/in-volume" not in names
    image_id = daemon.docker("import", "-c", "CMD [\"cat\", \"/etc/motd\"]", "-m", "mine",
                             str(out), "imported:1").stdout.strip()
    assert image_id.startswith("sha256:")
    assert daemon.cli("run", "--rm", "imported:1").stdout == "exported\n"
    native = subprocess.run([sys.executable, "-m", "portside", "import", "-c", "ENV WHO=native",
                             "-", "native:1"], input=out.read_bytes(), env=daemon.env,
                            capture_output=True, timeout=120)
    assert native.stdout.strip().startswith(b"sha256:"), native.stderr
    r = daemon.cli("run", "--rm", "native:1", "sh", "-c", "echo $WHO; cat /etc/motd")
    assert r.stdout == "native\nexported\n"
    bad = io.BytesIO(b"this is not a tar archive" * 40)
    r = daemon.docker("import", "-", "bad:1", check=False, input=bad.getvalue().decode())
    assert r.returncode == 1 and "not a tarball" in r.stderr
    assert "bad" not in daemon.cli("images").stdout
