"""`POST /build` end to end: the real docker client (28.x, classic builder protocol with
DOCKER_BUILDKIT=0) against portside's daemon, which builds with portside's own builder."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import shutil
import socket
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
from helpers.daemon import PortsideDaemon

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("docker") is None, reason="docker client not installed"),
    pytest.mark.skipif(
        os.geteuid() != 0 or not all(shutil.which(t) for t in ("crun", "conmon")),
        reason="RUN needs root, crun and conmon",
    ),
]


def docker_build(daemon: PortsideDaemon, *args: str, check: bool = True,
                 timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """`docker build` with the classic builder (daemon.docker drops DOCKER_* variables)."""
    r = subprocess.run(daemon.docker_argv("build", *args),
                       env=daemon.docker_env(DOCKER_BUILDKIT="0"), text=True, capture_output=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise AssertionError(f"docker build {' '.join(args)} -> {r.returncode}\n"
                             f"stdout: {r.stdout}\nstderr: {r.stderr}\n{daemon.log()[-3000:]}")
    return r


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=120)
        self._path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self._path)


def post(daemon: PortsideDaemon, path: str, body: bytes) -> tuple[int, bytes]:
    conn = _UnixConnection(daemon.socket)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/x-tar"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def tar_of(files: dict[str, Any]) -> bytes:
    """A context tar: name -> bytes (a file), or ("symlink", target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, value in files.items():
            info = tarfile.TarInfo(name)
            if isinstance(value, tuple):
                info.type, info.linkname = tarfile.SYMTYPE, value[1]
                tar.addfile(info)
            else:
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
    return buf.getvalue()


def inspect_image(daemon: PortsideDaemon, name: str) -> dict[str, Any] | None:
    conn = _UnixConnection(daemon.socket)
    try:
        conn.request("GET", f"/v1.43/images/{name}/json")
        resp = conn.getresponse()
        doc: dict[str, Any] = json.loads(resp.read())
    finally:
        conn.close()
    return doc if resp.status == 200 else None


def image_id(daemon: PortsideDaemon, name: str) -> str:
    doc = inspect_image(daemon, name)
    return str(doc["Id"]) if doc else ""


def image_labels(daemon: PortsideDaemon, name: str) -> dict[str, str]:
    doc = inspect_image(daemon, name)
    assert doc is not None
    labels: dict[str, str] = doc["Config"].get("Labels") or {}
    return labels


def leftovers(daemon: PortsideDaemon) -> list[str]:
    """Anything a build leaves behind: temp dirs, RUN containers, mounts under the root."""
    found = [str(p) for p in (daemon.root / "tmp").glob("*")] if (daemon.root / "tmp").exists() else []
    containers = daemon.root / "build" / "containers"
    if containers.exists():
        found += [str(p) for p in containers.iterdir() if not p.name.startswith(".")]
    tables = ["/proc/self/mounts"]
    if daemon.proc is not None:
        tables.append(f"/proc/{daemon.proc.pid}/mounts")
    for table in tables:
        with open(table) as f:
            found += [line for line in f if str(daemon.root) in line]
    return found


MULTISTAGE = """\
FROM busybox AS base
ARG X=0
RUN echo "base $X" > /base.txt && echo "ran base with X=$X"

FROM base AS t
ARG X
RUN echo "t $X" > /t.txt
CMD ["cat", "/base.txt", "/t.txt"]

FROM busybox AS other
RUN echo other > /other.txt
CMD ["cat", "/other.txt"]
"""


def test_build_target_with_build_arg_then_fully_cached(daemon: PortsideDaemon, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(MULTISTAGE)
    since = str(int(time.time()) - 1)
    first = docker_build(daemon, "-t", "app:1", "--build-arg", "X=1", "--target", "t", str(ctx))
    out = first.stdout
    assert "Step 1/7 : FROM busybox AS base\n" in out
    assert "Step 7/7 : CMD [\"cat\", \"/base.txt\", \"/t.txt\"]\n" in out
    assert "ran base with X=1\n" in out  # RUN output streams
    assert "other" not in out  # the stage after the target is not built
    built = re.search(r"^Successfully built ([0-9a-f]{12})$", out, re.M)
    assert built, out
    assert "Successfully tagged app:1\n" in out
    ident = image_id(daemon, "app:1")
    assert ident.startswith("sha256:" + built.group(1))
    assert daemon.docker("run", "--rm", "app:1").stdout == "base 1\nt 1\n"

    again = docker_build(daemon, "-t", "app:1", "--build-arg", "X=1", "--target", "t", str(ctx))
    assert again.stdout.count(" ---> Using cache\n") == 5  # every step but the two FROMs
    assert "ran base with X=1\n" not in again.stdout  # no RUN ran again
    assert f"Successfully built {built.group(1)}\n" in again.stdout
    assert image_id(daemon, "app:1") == ident

    events = daemon.docker("events", "--since", since, "--until", str(int(time.time()) + 1),
                           "--filter", "type=image", "--format", "{{json .}}").stdout
    tags = [json.loads(line) for line in events.splitlines()]
    assert any(e["Action"] == "tag" and e["Actor"]["ID"] == ident
               and e["Actor"]["Attributes"]["name"] == "app:1" for e in tags), events
    assert leftovers(daemon) == []


def test_dockerfile_in_subdir_labels_quiet_and_dockerignore(daemon: PortsideDaemon,
                                                            tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / "docker").mkdir(parents=True)
    (ctx / "docker" / "app.Dockerfile").write_text(
        "FROM busybox\nCOPY . /ctx\nCMD [\"ls\", \"-A\", \"/ctx\"]\n")
    (ctx / ".dockerignore").write_text("secret.txt\n*.log\n")
    (ctx / "secret.txt").write_text("do not ship\n")
    (ctx / "debug.log").write_text("noise\n")
    (ctx / "app.py").write_text("print('hi')\n")
    r = docker_build(daemon, "-q", "-f", str(ctx / "docker" / "app.Dockerfile"),
                     "--label", "team=core", "--label", "tier=web", "-t", "lab:1", str(ctx))
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", r.stdout), r.stdout  # -q: only the id
    assert r.stdout.strip() == image_id(daemon, "lab:1")
    labels = image_labels(daemon, "lab:1")
    assert labels["team"] == "core" and labels["tier"] == "web"
    listing = daemon.docker("run", "--rm", "lab:1").stdout.split()
    assert "app.py" in listing and "docker" in listing
    assert "secret.txt" not in listing and "debug.log" not in listing

    # The daemon applies .dockerignore itself too: a client that sends everything.
    body = tar_of({"Dockerfile": b"FROM busybox\nCOPY . /ctx\n", ".dockerignore": b"secret.txt\n",
                   "secret.txt": b"do not ship\n", "kept.txt": b"kept\n"})
    status, raw = post(daemon, "/v1.43/build?t=raw:1", body)
    assert status == 200, raw
    messages = [json.loads(line) for line in raw.splitlines() if line.strip()]
    assert {"aux": {"ID": image_id(daemon, "raw:1")}} in messages
    listing = daemon.docker("run", "--rm", "raw:1", "ls", "-A", "/ctx").stdout.split()
    assert "kept.txt" in listing and "secret.txt" not in listing


def test_bad_input_gives_docker_status_and_one_line(daemon: PortsideDaemon, tmp_path: Path) -> None:
    before = daemon.docker("images", "-q", "--no-trunc").stdout
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nFORM busybox\n")
    r = docker_build(daemon, "-t", "bad:1", str(ctx), check=False)
    assert r.returncode == 1
    message = [line for line in r.stderr.splitlines() if "Dockerfile" in line]
    assert message == ["Error response from daemon: Dockerfile:2: unknown instruction: FORM"
                       " (did you mean FROM?)"], r.stderr

    status, raw = post(daemon, "/build", b"this is not a tar archive\n" * 40)
    assert status == 400
    assert "build context is not a valid tar archive" in json.loads(raw)["message"]

    status, raw = post(daemon, "/build?memory=1000000", tar_of({"Dockerfile": b"FROM busybox\n"}))
    assert status == 400 and "memory limits" in json.loads(raw)["message"]

    # Hostile contexts: a path climbing out, and a symlink a COPY would reach through.
    status, raw = post(daemon, "/build", tar_of({"Dockerfile": b"FROM busybox\n",
                                                  "../../escaped": b"x"}))
    assert status == 400 and "refusing entry" in json.loads(raw)["message"]
    assert not (daemon.root / "escaped").exists() and not (daemon.root.parent / "escaped").exists()
    status, raw = post(daemon, "/build", tar_of({
        "Dockerfile": b"FROM busybox\nCOPY etc/hostname /stolen\n", "etc": ("symlink", "/etc")}))
    assert status == 200
    last = json.loads(raw.splitlines()[-1])
    assert "etc/hostname" in last["error"] and last["errorDetail"]["code"] == 1

    # A failing RUN: its exit code and output in the message; nothing half-written kept.
    (ctx / "Dockerfile").write_text(
        "FROM busybox\nRUN echo step one > /one\nRUN echo about to fail && exit 3\n")
    r = docker_build(daemon, "-t", "fails:1", str(ctx), check=False)
    assert r.returncode == 3, r.stderr
    assert "Dockerfile:3" in r.stderr and "exit code 3" in r.stderr
    assert "about to fail" in r.stderr
    assert "about to fail\n" in r.stdout  # streamed as it ran
    assert daemon.docker("images", "-q", "--no-trunc").stdout == before
    assert image_id(daemon, "fails:1") == ""
    quiet = docker_build(daemon, "-q", "-t", "fails:1", str(ctx), check=False)
    assert quiet.returncode == 3 and quiet.stdout == ""
    assert "about to fail" in quiet.stderr  # -q shows the held-back output on failure
    assert leftovers(daemon) == []


def test_builder_prune_drops_the_cache(daemon: PortsideDaemon, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo cached > /f\n")
    docker_build(daemon, "-t", "p:1", str(ctx))
    assert "Using cache" in docker_build(daemon, "-t", "p:1", str(ctx)).stdout
    r = daemon.docker("builder", "prune", "-f")
    assert "Deleted build cache objects:" in r.stdout
    assert "Total reclaimed space:" in r.stdout
    assert "Using cache" not in docker_build(daemon, "-t", "p:1", str(ctx)).stdout
    # the image itself stays: prune removes only what the cache alone kept
    assert daemon.docker("run", "--rm", "p:1", "cat", "/f").stdout == "cached\n"


def test_compressed_contexts_and_a_dockerfile_on_stdin(daemon: PortsideDaemon,
                                                       tmp_path: Path) -> None:
    import lzma

    body = lzma.compress(tar_of({"Dockerfile": b"FROM busybox\nCOPY a.txt /\n",
                                 "a.txt": b"from an xz context\n"}))
    status, raw = post(daemon, "/v1.43/build?t=xz:1", body)
    assert status == 200, raw
    assert daemon.docker("run", "--rm", "xz:1", "cat", "/a.txt").stdout == "from an xz context\n"

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "b.txt").write_text("beside a piped Dockerfile\n")
    env = daemon.docker_env(DOCKER_BUILDKIT="0")
    r = subprocess.run(daemon.docker_argv("build", "-t", "stdin:1", "-f", "-", str(ctx)),
                       env=env, text=True, capture_output=True,
                       input="FROM busybox\nCOPY b.txt /\n", timeout=180)
    assert r.returncode == 0, r.stderr
    assert daemon.docker("run", "--rm", "stdin:1", "cat", "/b.txt").stdout == \
        "beside a piped Dockerfile\n"


def test_a_client_that_leaves_stops_its_build(daemon: PortsideDaemon) -> None:
    before = daemon.docker("images", "-q", "--no-trunc").stdout
    body = tar_of({"Dockerfile": b"FROM busybox\n"
                                 b"RUN while true; do echo tick; sleep 0.1; done\n"})
    conn = _UnixConnection(daemon.socket)
    conn.request("POST", "/build?t=left:1", body=body)
    resp = conn.getresponse()
    assert resp.status == 200
    assert b"tick" in resp.readline() + resp.readline() + resp.readline() + resp.readline()
    conn.close()
    daemon.wait_for(lambda: leftovers(daemon) == [], timeout=30, what="the build to stop")
    assert daemon.docker("images", "-q", "--no-trunc").stdout == before


def test_a_build_does_not_hold_up_other_work(daemon: PortsideDaemon, tmp_path: Path) -> None:
    """The image lock is taken per store call: `docker run` goes on while a RUN step runs."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN sleep 4 && echo slept\n")
    env = daemon.docker_env(DOCKER_BUILDKIT="0")
    slow = subprocess.Popen(daemon.docker_argv("build", "-t", "slow:1", str(ctx)), env=env,
                            text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not list((daemon.root / "build" / "containers").glob("*")):
            assert time.monotonic() < deadline and slow.poll() is None, "no RUN started"
            time.sleep(0.05)
        started = time.monotonic()
        assert daemon.docker("run", "--rm", "busybox", "echo", "meanwhile").stdout == "meanwhile\n"
        assert time.monotonic() - started < 3.5 and slow.poll() is None
        out, err = slow.communicate(timeout=120)
        assert slow.returncode == 0, err
        assert "slept\n" in out
    finally:
        if slow.poll() is None:
            slow.kill()
            slow.communicate()


def test_a_daemon_that_stops_stops_its_builds_first(daemon: PortsideDaemon) -> None:
    """SIGTERM while a RUN step runs (silently): the build is stopped and cleaned up before
    the daemon exits; no container, mount or cgroup of it survives."""
    from portside.runtime import cgroups

    body = tar_of({"Dockerfile": b"FROM busybox\nRUN sleep 300\n"})
    conn = _UnixConnection(daemon.socket)
    conn.request("POST", "/build?t=never:1", body=body)
    resp = conn.getresponse()
    containers = daemon.root / "build" / "containers"
    daemon.wait_for(lambda: any(p for p in containers.glob("*") if not p.name.startswith(".")),
                    what="the RUN container")
    daemon.stop()
    lines = resp.read().decode().splitlines()
    conn.close()
    assert "cancelled" in json.loads(lines[-1])["error"]
    assert leftovers(daemon) == []
    assert not [h for h in cgroups.detect().hierarchies()
                if any((Path(h) / "portside-build").glob("*/"))]


def test_two_builds_at_once_both_succeed(daemon: PortsideDaemon, tmp_path: Path) -> None:
    env = daemon.docker_env(DOCKER_BUILDKIT="0")
    procs = []
    for n in (1, 2):
        ctx = tmp_path / f"ctx{n}"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(
            f"FROM busybox\nRUN echo {n} > /n && sleep 1\nCOPY . /src\nRUN cat /n\n")
        (ctx / "file.txt").write_text(f"context {n}\n")
        procs.append(subprocess.Popen(
            daemon.docker_argv("build", "-t", f"twin:{n}", str(ctx)),
            env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    for n in (1, 2):
        assert daemon.docker("run", "--rm", f"twin:{n}", "cat", "/n", "/src/file.txt").stdout \
            == f"{n}\ncontext {n}\n"
    assert leftovers(daemon) == []


def test_portsides_own_client_builds_through_the_endpoint(daemon: PortsideDaemon) -> None:
    """The engine interface's remote implementation (what the CLI will use): output lines,
    the image id, and the daemon's errors raised as their own classes with their facts."""
    from portside.build.errors import BuildError, DockerfileError
    from portside.client.remote import RemoteEngine
    from portside.client.transport import Client
    from portside.engine.interface import BuildOptions

    images = RemoteEngine(Client(daemon.socket, autostart=False)).images
    lines: list[str] = []
    context = tar_of({"Dockerfile": MULTISTAGE.encode()})
    ident = images.build(io.BytesIO(context), BuildOptions(tags=["remote:1"],
                         build_args={"X": "7"}, target="t"), lines.append)
    assert ident == image_id(daemon, "remote:1")
    assert "ran base with X=7\n" in lines and lines[-1] == "Successfully tagged remote:1\n"
    quiet = images.build(io.BytesIO(context), BuildOptions(build_args={"X": "7"}, target="t",
                                                           quiet=True), lines.append)
    assert quiet == ident

    with pytest.raises(BuildError) as failed:
        images.build(io.BytesIO(tar_of({"Dockerfile": b"FROM busybox\nRUN exit 4\n"})),
                     BuildOptions(), lines.append)
    assert failed.value.status == 4 and failed.value.line == 2
    with pytest.raises(DockerfileError) as bad:
        images.build(io.BytesIO(tar_of({"Dockerfile": b"FROM busybox\nNOPE\n"})),
                     BuildOptions(), lines.append)
    assert bad.value.line == 2


def test_rmi_during_a_build_neither_waits_for_it_nor_deadlocks(daemon: PortsideDaemon,
                                                               tmp_path: Path) -> None:
    """A build holds the store's import lock (garbage collection must not sweep its fresh
    blobs) and takes the engine's image lock per call; an rmi that deletes an image holds
    the image lock and collects garbage. The collection must not wait for the build."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nLABEL doomed=yes\n")
    docker_build(daemon, "-t", "doomed:1", str(ctx))
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN sleep 4 && echo slept\n"
                                    "RUN echo after\n")
    env = daemon.docker_env(DOCKER_BUILDKIT="0")
    slow = subprocess.Popen(daemon.docker_argv("build", "-t", "slow:1", str(ctx)), env=env,
                            text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        containers = daemon.root / "build" / "containers"
        daemon.wait_for(lambda: any(p for p in containers.glob("*")
                                    if not p.name.startswith(".")), what="the RUN step")
        started = time.monotonic()
        r = daemon.docker("rmi", "doomed:1", timeout=30)
        assert "Deleted" in r.stdout and time.monotonic() - started < 3.5
        out, err = slow.communicate(timeout=120)
        assert slow.returncode == 0, err
        assert "after\n" in out
        assert image_id(daemon, "doomed:1") == ""
        assert daemon.docker("run", "--rm", "slow:1", "echo", "ok").stdout == "ok\n"
    finally:
        if slow.poll() is None:
            slow.kill()
            slow.communicate()
