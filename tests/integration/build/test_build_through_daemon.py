"""`portside build` and `image bootstrap` through the daemon: portside's own `/build`
extensions (secrets, outputs, steps, -f -), each through the real command line."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from helpers.daemon import PortsideDaemon

SECRET = "s3cr3t-bd-VALUE-7731"


def _events(d: PortsideDaemon, since: float) -> list[dict[str, object]]:
    out = d.cli("events", "--since", str(int(since)), "--until", str(int(time.time()) + 1),
                "--filter", "type=image", "--format", "json").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _contents(path: Path) -> bytes:
    """A file's bytes, gunzipped when it is gzip (layers, blobs)."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError):
            return data
    return data


def _anywhere(root: Path, needle: bytes) -> list[Path]:
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            if path.is_file() and not path.is_symlink():
                try:
                    if needle in _contents(path):
                        found.append(path)
                except OSError:
                    continue
    return found


def test_a_secret_travels_in_the_request_and_is_kept_nowhere(daemon: PortsideDaemon,
                                                             tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (tmp_path / "token").write_text(SECRET + "\n")
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        f"RUN --mount=type=secret,id=tok grep -q {SECRET[:6]} /run/secrets/tok && echo ok > /ok\n"
        "RUN --mount=type=secret,id=env,env=TOKEN test -n \"$TOKEN\"\n"
    )
    since = time.time() - 1
    env_run = daemon.env | {"BD_TOKEN": SECRET}
    built = subprocess.run(
        [sys.executable, "-m", "portside", "build", "--progress", "plain", "-t", "bd-sec:1",
         "--secret", f"id=tok,src={tmp_path / 'token'}", "--secret", "id=env,env=BD_TOKEN",
         str(ctx)], env=env_run, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL)
    assert built.returncode == 0, built.stderr
    image_id = built.stdout.strip()
    # The step lines with status and time, as in-process builds printed them.
    assert any(line.startswith("#2 [stage-0 1/2] RUN --mount=type=secret,id=tok")
               and line.endswith("s") and "DONE" in line for line in built.stderr.splitlines())
    # The daemon built it: its event bus saw the tag.
    tags = [e for e in _events(daemon, since) if e.get("Action") == "tag"]
    assert any(e["Actor"]["ID"] == image_id for e in tags), tags  # type: ignore[index]
    # Not in a layer, the config, the history, the build cache, a log or the events.
    history = daemon.cli("image", "history", "--no-trunc", "bd-sec:1").stdout
    assert SECRET not in history and SECRET not in built.stderr
    assert _anywhere(daemon.root, SECRET.encode()) == []
    saved = tmp_path / "img.tar"
    daemon.cli("save", "-o", str(saved), "bd-sec:1")
    with tarfile.open(saved) as tar:
        for member in tar:
            f = tar.extractfile(member) if member.isreg() else None
            data = f.read() if f else b""
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            assert SECRET.encode() not in data, member.name


def test_outputs_are_written_by_the_client(daemon: PortsideDaemon, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "hello.txt").write_text("hello\n")
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY hello.txt /srv/hello.txt\n"
                                    "RUN echo made > /srv/made\n")
    fs, out, oci = tmp_path / "fs.tar", tmp_path / "out", tmp_path / "oci.tar"
    built = daemon.cli("build", "-q", "-o", f"type=tar,dest={fs}", "-o", f"type=local,dest={out}",
                       "-o", f"type=oci,dest={oci}", "-t", "bd-out:1", str(ctx))
    image_id = built.stdout.strip()
    assert (out / "srv" / "hello.txt").read_text() == "hello\n"
    assert (out / "srv" / "made").read_text() == "made\n"
    assert (out / "bin" / "busybox").is_file()
    with tarfile.open(fs) as tar:
        names = tar.getnames()
        member = tar.extractfile("srv/made")
        assert member is not None and member.read() == b"made\n"
    assert "bin/busybox" in names
    with tarfile.open(oci) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "1"
    # No container is left of the export.
    assert daemon.cli("ps", "-aq").stdout.strip() == ""
    assert json.loads(daemon.cli("image", "inspect", "bd-out:1").stdout)[0]["Id"] == image_id
    # A bad output is refused before anything is built.
    bad = daemon.cli("build", "-o", "type=zip,dest=x", str(ctx), check=False)
    assert bad.returncode != 0 and bad.stderr.strip().splitlines() == [
        "Error: --output type=zip: use type=oci, docker, tar or local"]
    (out / "extra").write_text("x")
    busy = daemon.cli("build", "-o", f"type=local,dest={out}", str(ctx), check=False)
    assert busy.returncode != 0 and "exists and is not an empty directory" in busy.stderr


def test_dockerfile_from_stdin_or_outside_the_context(daemon: PortsideDaemon,
                                                      tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "a.txt").write_text("a\n")
    (ctx / "secret.key").write_text("never sent\n")
    (ctx / ".dockerignore").write_text("secret.key\n")
    built = daemon.cli("build", "-q", "-f", "-", "-t", "bd-stdin:1", str(ctx),
                       input="FROM busybox\nCOPY a.txt /a.txt\n")
    assert built.stdout.strip().startswith("sha256:")
    bad = daemon.cli("build", "-f", "-", str(ctx), input="FROM busybox\nRUNN x\n", check=False)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "Error: Dockerfile:2: unknown instruction: RUNN (did you mean RUN?)"
    elsewhere = tmp_path / "docker" / "app.Dockerfile"
    elsewhere.parent.mkdir()
    elsewhere.write_text("FROM busybox\nCOPY secret.key /k\n")
    hidden = daemon.cli("build", "-f", str(elsewhere), str(ctx), check=False)
    assert hidden.returncode == 1
    assert "excluded by .dockerignore" in hidden.stderr and str(elsewhere) in hidden.stderr
    failed = daemon.cli("build", "-f", "-", str(ctx), input="FROM busybox\nRUN exit 7\n",
                        check=False)
    assert failed.returncode == 1
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: Dockerfile:2: RUN exit 7 failed with exit code 7"), last


def test_bootstrap_lands_through_the_daemon(daemon: PortsideDaemon) -> None:
    since = time.time() - 1
    made = daemon.cli("image", "bootstrap", "busybox", "-t", "bd-base:1").stdout
    image_id = made.split()[-1]
    assert "Tagged bd-base:1" in made
    assert json.loads(daemon.cli("image", "inspect", "bd-base:1").stdout)[0]["Id"] == image_id
    assert any(e.get("Action") == "load" or e.get("Action") == "tag"
               for e in _events(daemon, since))


def test_push_is_the_daemons(daemon: PortsideDaemon, tmp_path: Path) -> None:
    """`--push`: the daemon pushes each tag, with its progress lines on the client."""
    from helpers.regserver import run_registry

    from portside.registry import server as srv

    running, stop = run_registry(srv.open_registry(tmp_path / "registry"))
    try:
        ctx = tmp_path / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text("FROM busybox\nLABEL bd=push\n")
        names = [f"{running.host}/bd/app:1", f"{running.host}/bd/app:2"]
        since = time.time() - 1
        built = daemon.cli("build", "--progress", "plain", "--push", "-t", names[0], "-t",
                           names[1], str(ctx))
        for name in names:
            assert f"pushed {name}: digest: sha256:" in built.stderr
        pushes = [e for e in _events(daemon, since) if e.get("Action") == "push"]
        assert len(pushes) == 2, pushes
        nothing = daemon.cli("build", "--push", str(ctx), check=False)
        assert nothing.returncode != 0 and nothing.stderr.strip() == (
            "Error: --push needs at least one -t name to push to")
    finally:
        stop()
