"""`docker cp` and `portside cp` against the daemon: both directions, running and stopped
containers, tar streams, and paths that try to leave the container's filesystem."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from helpers.daemon import PortsideDaemon


def test_docker_cp_out_of_and_into_a_running_container(daemon: PortsideDaemon,
                                                      tmp_path: Path) -> None:
    daemon.cli("run", "-d", "--name", "web", "--hostname", "webhost", "busybox",
               "sleep", "300")
    r = daemon.docker("cp", "web:/etc/hostname", str(tmp_path))
    assert (tmp_path / "hostname").read_text() == "webhost\n", r.stderr
    conf = tmp_path / "conf"
    (conf / "sub").mkdir(parents=True)
    (conf / "app.ini").write_text("x=1\n")
    (conf / "sub" / "deep.txt").write_text("deep\n")
    daemon.docker("cp", str(conf), "web:/conf")
    out = daemon.cli("exec", "web", "sh", "-c", "cat /conf/app.ini /conf/sub/deep.txt;"
                     " stat -c %u:%g /conf/app.ini").stdout
    assert out == "x=1\ndeep\n0:0\n"


def test_cp_with_a_stopped_container_reads_and_writes_its_rw_layer(
        daemon: PortsideDaemon, tmp_path: Path) -> None:
    daemon.cli("run", "--name", "job", "-v", "jobdata:/data", "busybox", "sh", "-c",
               "echo made > /made.txt; echo vol > /data/v.txt")
    daemon.docker("cp", "job:/made.txt", str(tmp_path / "made.txt"))
    assert (tmp_path / "made.txt").read_text() == "made\n"
    daemon.docker("cp", "job:/data/v.txt", str(tmp_path / "v.txt"))  # from its volume
    assert (tmp_path / "v.txt").read_text() == "vol\n"
    (tmp_path / "in.txt").write_text("copied in\n")
    daemon.docker("cp", str(tmp_path / "in.txt"), "job:/etc/in.txt")
    daemon.docker("cp", str(tmp_path / "in.txt"), "job:/data/in.txt")
    created = daemon.cli("create", "--name", "fresh", "busybox", "true").stdout.strip()
    daemon.docker("cp", str(tmp_path / "in.txt"), f"{created[:12]}:/in.txt")
    daemon.cli("start", "-a", "job")  # the same container, started again: sees both files
    r = daemon.cli("run", "--rm", "-v", "jobdata:/data", "busybox", "cat", "/data/in.txt")
    assert r.stdout == "copied in\n"
    assert "A /etc/in.txt" in daemon.cli("diff", "job").stdout.split("\n")
    assert "A /in.txt" in daemon.cli("diff", "fresh").stdout.split("\n")
    # The image's layers are shared snapshots: a new container does not see the file.
    r = daemon.cli("run", "--rm", "busybox", "test", "-e", "/etc/in.txt", check=False)
    assert r.returncode == 1


def _tar(members: dict[str, bytes | None], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o644
                info.uid = info.gid = 1234
                tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def test_cp_with_tar_streams_on_stdin_and_stdout(daemon: PortsideDaemon) -> None:
    daemon.cli("run", "-d", "--name", "web", "busybox", "sleep", "300")
    data = _tar({"pkg/": None, "pkg/a.txt": b"alpha\n"})
    import subprocess

    env = {k: v for k, v in daemon.env.items() if not k.startswith("DOCKER_")}
    r = subprocess.run(["docker", "-H", f"unix://{daemon.socket}", "cp", "-a", "-", "web:/tmp"],
                       input=data, capture_output=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    out = daemon.cli("exec", "web", "stat", "-c", "%u:%g %n", "/tmp/pkg/a.txt").stdout
    assert out == "1234:1234 /tmp/pkg/a.txt\n"  # -a keeps the archive's owners
    r = subprocess.run(["docker", "-H", f"unix://{daemon.socket}", "cp", "web:/tmp/pkg", "-"],
                       capture_output=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as tar:
        names = tar.getnames()
        assert "pkg/a.txt" in names
        member = tar.extractfile("pkg/a.txt")
        assert member is not None and member.read() == b"alpha\n"


def test_cp_never_leaves_the_container_filesystem(daemon: PortsideDaemon,
                                                  tmp_path: Path) -> None:
    marker = tmp_path / "host-marker"
    marker.write_text("host secret\n")
    daemon.cli("run", "-d", "--name", "web", "busybox", "sh", "-c",
               f"echo container > /inside; ln -s / /rootlink; ln -s /etc /etclink;"
               f" ln -s {tmp_path} /hostlink; ln -s ../../../../.. /up; exec sleep 300")
    daemon.cli("exec", "web", "true")
    for path in ("../../../../etc/passwd", "/rootlink/etc/passwd", "/etclink/passwd",
                 "/up/etc/passwd"):
        out = tmp_path / "out"
        out.mkdir()
        daemon.docker("cp", f"web:{path}", str(out / "passwd"))
        text = (out / "passwd").read_text()
        assert text.startswith("root:x:0:0:root:/root:/bin/sh"), (path, text)  # busybox's
        assert text == daemon.cli("exec", "web", "cat", "/etc/passwd").stdout
        for child in out.iterdir():
            child.unlink()
        out.rmdir()
    # A link to a host path resolves inside the container, where that path does not exist.
    r = daemon.docker("cp", f"web:/hostlink/{marker.name}", str(tmp_path / "x"), check=False)
    assert r.returncode != 0 and "Could not find the file" in r.stderr
    # Writes through those links land in the container too, never on the host.
    (tmp_path / "evil.txt").write_text("evil\n")
    daemon.docker("cp", str(tmp_path / "evil.txt"), "web:/rootlink/tmp/")
    daemon.docker("cp", str(tmp_path / "evil.txt"), "web:../../../../tmp/evil2.txt")
    r = daemon.docker("cp", str(tmp_path / "evil.txt"), f"web:/hostlink/{marker.name}",
                      check=False)
    assert marker.read_text() == "host secret\n"
    assert not Path("/tmp/evil.txt").exists() or Path("/tmp/evil.txt").read_text() != "evil\n"
    assert daemon.cli("exec", "web", "cat", "/tmp/evil.txt", "/tmp/evil2.txt").stdout == \
        "evil\nevil\n"
    # An archive that climbs out, is absolute, or links out and writes through: refused.
    import subprocess

    env = {k: v for k, v in daemon.env.items() if not k.startswith("DOCKER_")}
    for bad in (_tar({"../../../../escape.txt": b"x"}),
                _tar({}, {"esc": "../../../../../.."}),
                _tar({"/abs.txt": b"x"})):
        r = subprocess.run(["curl", "-s", "-o", "/dev/stderr", "-w", "%{http_code}",
                            "--unix-socket", str(daemon.socket), "-X", "PUT",
                            "--data-binary", "@-", "http://d/containers/web/archive?path=/tmp"],
                           input=bad, capture_output=True, env=env, timeout=60)
        assert r.stdout == b"400", (r.stdout, r.stderr)
    assert not Path("/escape.txt").exists() and not Path("/abs.txt").exists()


def test_cp_of_a_missing_path_says_what_docker_says(daemon: PortsideDaemon,
                                                     tmp_path: Path) -> None:
    daemon.cli("run", "-d", "--name", "web", "busybox", "sleep", "300")
    r = daemon.docker("cp", "web:/nope", str(tmp_path), check=False)
    assert r.returncode == 1
    assert "Could not find the file /nope in container web" in r.stderr
    r = daemon.cli("cp", "web:/nope", str(tmp_path), check=False)
    assert r.returncode == 1 and "Could not find the file /nope in container web" in r.stderr


def test_portside_cp_both_ways_with_docker_naming_rules(daemon: PortsideDaemon,
                                                        tmp_path: Path) -> None:
    daemon.cli("run", "-d", "--name", "web", "busybox", "sh", "-c",
               "mkdir -p /srv/site && echo page > /srv/site/index.html &&"
               " ln -s /srv/site/index.html /srv/link && exec sleep 300")
    daemon.cli("exec", "web", "true")
    r = daemon.cli("cp", "web:/srv/site", str(tmp_path))
    assert (tmp_path / "site" / "index.html").read_text() == "page\n"
    assert "Successfully copied" in r.stderr
    daemon.cli("cp", "web:/srv/site", str(tmp_path / "renamed"))  # a new name: the copy's
    assert (tmp_path / "renamed" / "index.html").read_text() == "page\n"
    daemon.cli("cp", "web:/srv/site/.", str(tmp_path / "contents"))
    assert (tmp_path / "contents" / "index.html").read_text() == "page\n"
    daemon.cli("cp", "web:/srv/link", str(tmp_path / "asis"))
    assert (tmp_path / "asis").is_symlink()  # without -L: the link itself
    daemon.cli("cp", "-L", "web:/srv/link", str(tmp_path / "followed"))
    assert (tmp_path / "followed").read_text() == "page\n"
    src = tmp_path / "up"
    src.mkdir()
    (src / "one.txt").write_text("1\n")
    daemon.cli("cp", str(src), "web:/srv")  # into an existing directory
    daemon.cli("cp", str(src), "web:/uploaded")  # to a new name
    daemon.cli("cp", str(src / "one.txt"), "web:/srv/site/index.html")  # over a file
    out = daemon.cli("exec", "web", "cat", "/srv/up/one.txt", "/uploaded/one.txt",
                     "/srv/site/index.html").stdout
    assert out == "1\n1\n1\n"
    tar = daemon.cli("cp", "web:/srv/up", "-").stdout  # text mode is fine for this ascii tar
    assert "up/one.txt" in tar
    daemon.cli("cp", "-", "web:/tmp", input=_tar({"fromstdin.txt": b"stdin\n"}).decode())
    assert daemon.cli("exec", "web", "cat", "/tmp/fromstdin.txt").stdout == "stdin\n"
    r = daemon.cli("cp", str(src), "web:/srv/site/index.html", check=False)
    assert r.returncode != 0 and "cannot copy directory" in r.stderr


def test_cp_into_a_read_only_root_is_refused_but_its_volume_takes_it(
        daemon: PortsideDaemon, tmp_path: Path) -> None:
    daemon.cli("run", "-d", "--name", "ro", "--read-only", "-v", "/scratch", "busybox",
               "sleep", "300")
    (tmp_path / "f.txt").write_text("f\n")
    r = daemon.docker("cp", str(tmp_path / "f.txt"), "ro:/f.txt", check=False)
    assert r.returncode == 1 and "read-only" in r.stderr
    daemon.docker("cp", str(tmp_path / "f.txt"), "ro:/scratch/f.txt")
    assert daemon.cli("exec", "ro", "cat", "/scratch/f.txt").stdout == "f\n"
    daemon.cli("stop", "-t", "0", "ro")
    r = daemon.docker("cp", str(tmp_path / "f.txt"), "ro:/g.txt", check=False)
    assert r.returncode == 1 and "read-only" in r.stderr
    daemon.docker("cp", str(tmp_path / "f.txt"), "ro:/scratch/g.txt")  # stopped: its volume
    daemon.docker("cp", "ro:/scratch/g.txt", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_text() == "f\n"


def test_cp_of_the_whole_root_of_a_running_container(daemon: PortsideDaemon) -> None:
    import subprocess

    daemon.cli("run", "-d", "--name", "web", "busybox", "sh", "-c",
               "echo top > /top.txt; exec sleep 300")
    daemon.cli("exec", "web", "cat", "/top.txt")
    env = {k: v for k, v in daemon.env.items() if not k.startswith("DOCKER_")}
    r = subprocess.run(["docker", "-H", f"unix://{daemon.socket}", "cp", "web:/", "-"],
                       capture_output=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as tar:
        names = set(tar.getnames())
    assert {"top.txt", "bin/busybox", "proc", "sys"} <= names
    assert not any(n.startswith(("proc/", "sys/")) for n in names)  # the kernel's: not walked
    r = subprocess.run(["docker", "-H", f"unix://{daemon.socket}", "cp", "web:/proc/1/cmdline",
                        "-"], capture_output=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr  # asked for by name: it is archived
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as tar:
        assert tar.getnames() == ["cmdline"]
