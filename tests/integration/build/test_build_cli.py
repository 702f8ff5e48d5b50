"""`portside build` end to end through the command line, against a private store."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from helpers.imagefactory import add_image

from portside.store.images import ImageStore

PASSWD = b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
GROUP = b"root:x:0:\nstaff:x:50:\n"


def portside(
    root: Path,
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    ok: bool = True,
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PORTSIDE_ROOT": str(root), **(env or {})}
    full_env.pop("SOURCE_DATE_EPOCH", None) if "SOURCE_DATE_EPOCH" not in (env or {}) else None
    proc = subprocess.run(
        [sys.executable, "-m", "portside", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def layer_files(root: Path, ref: str) -> list[dict[str, tarfile.TarInfo | bytes]]:
    """Every layer of an image: name -> (TarInfo, content) as the layer holds them."""
    store = ImageStore(root)
    try:
        image = store.get(ref)
        out = []
        for desc in store.manifest(image).layers:
            files: dict[str, tarfile.TarInfo | bytes] = {}
            with tarfile.open(fileobj=io.BytesIO(store.content.read(desc.digest)), mode="r:*") as t:
                for m in t:
                    f = t.extractfile(m) if m.isreg() else None
                    files[m.name] = m
                    files[m.name + "#data"] = f.read() if f else b""
            out.append(files)
        return out
    finally:
        store.db.close()


def image_config(root: Path, ref: str) -> dict:  # type: ignore[type-arg]
    store = ImageStore(root)
    try:
        return store.config(store.get(ref)).raw
    finally:
        store.db.close()


def statuses(stderr: str) -> dict[str, str]:
    """Step text -> CACHED / DONE, from plain progress lines."""
    out = {}
    for line in stderr.splitlines():
        if line.startswith("#") and "] " in line:
            body = line.split("] ", 1)[1]
            text, _, tail = body.rpartition("  ")
            out[text] = tail.split()[0]
    return out


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    c = tmp_path / "ctx"
    (c / "src" / "lib").mkdir(parents=True)
    (c / "hello.txt").write_text("hello\n")
    (c / "src" / "app.py").write_text("print('app')\n")
    (c / "src" / "lib" / "util.py").write_text("X = 1\n")
    (c / "src" / "lib" / "cache.pyc").write_bytes(b"\0")
    (c / "secret.key").write_text("do not ship\n")
    (c / ".dockerignore").write_text("secret.key\n**/*.pyc\n")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        info = tarfile.TarInfo("pkg/data.txt")
        info.size = 5
        t.addfile(info, io.BytesIO(b"data\n"))
    (c / "bundle.tar.gz").write_bytes(buf.getvalue())
    return c


@pytest.fixture
def base(store: ImageStore) -> str:
    add_image(
        store,
        [{"etc/passwd": PASSWD, "etc/group": GROUP, "bin/sh": b"#!fake\n"}],
        tags=("base:1",),
        config={"Cmd": ["sh"], "Env": ["PATH=/usr/bin:/bin"]},
    )
    return "base:1"


DOCKERFILE = """\
# syntax=docker/dockerfile:1
ARG TAG=1
FROM base:$TAG
ARG VERSION=1.0
ENV APP_VERSION=$VERSION \\
    HOME=/home/app
LABEL org.example.version="${VERSION}" org.example.empty="${NOPE:-none}"
WORKDIR /srv/app
COPY --chown=app:staff --chmod=0750 src/ ./src/
COPY hello.txt .
ADD bundle.tar.gz /opt/
COPY <<EOF /etc/app.conf
version=$VERSION
EOF
EXPOSE 8080 53/udp
VOLUME ["/data"]
USER app
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --retries=2 CMD ["/bin/check"]
CMD ["python3", "src/app.py"]
"""


def test_build_copies_files_and_sets_config(root: Path, ctx: Path, base: str) -> None:
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    proc = portside(
        root,
        "build",
        "--progress",
        "plain",
        "-t",
        "app:1",
        "-t",
        "app:latest",
        "--build-arg",
        "VERSION=2.5",
        str(ctx),
    )
    image_id = proc.stdout.strip()
    assert image_id.startswith("sha256:")
    layers = layer_files(root, "app:1")
    assert len(layers) == 1 + 5  # base + WORKDIR, COPY src, COPY hello, ADD, COPY heredoc
    workdir, src, hello, add, conf = layers[1:]
    assert "srv/app" in workdir
    assert src["srv/app/src/app.py#data"] == b"print('app')\n"
    info = src["srv/app/src/lib/util.py"]
    assert isinstance(info, tarfile.TarInfo)
    assert (info.uid, info.gid, info.mode) == (1000, 50, 0o750)
    assert "srv/app/src/lib/cache.pyc" not in src  # .dockerignore
    assert hello["srv/app/hello.txt#data"] == b"hello\n"
    assert add["opt/pkg/data.txt#data"] == b"data\n"  # archive unpacked
    assert conf["etc/app.conf#data"] == b"version=2.5\n"
    cfg = image_config(root, "app:latest")
    c = cfg["config"]
    assert "APP_VERSION=2.5" in c["Env"] and "HOME=/home/app" in c["Env"]
    assert c["Labels"]["org.example.version"] == "2.5"
    assert c["Labels"]["org.example.empty"] == "none"
    assert c["WorkingDir"] == "/srv/app"
    assert c["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    assert c["Volumes"] == {"/data": {}}
    assert (c["User"], c["StopSignal"]) == ("app", "SIGTERM")
    assert c["Healthcheck"] == {"Test": ["CMD", "/bin/check"], "Interval": 30 * 10**9, "Retries": 2}
    assert c["Cmd"] == ["python3", "src/app.py"]
    # history: which Dockerfile line made each layer
    made = [h for h in cfg["history"] if not h.get("empty_layer")]
    assert [h["comment"] for h in made[1:]] == [
        "Dockerfile:8",
        "Dockerfile:9",
        "Dockerfile:10",
        "Dockerfile:11",
        "Dockerfile:12",
    ]
    assert made[3]["created_by"] == "COPY hello.txt . # buildkit"
    shown = portside(root, "image", "history", "app:1").stdout
    assert "Dockerfile:10" in shown and "COPY hello.txt ." in shown
    store = ImageStore(root)
    try:
        assert store.holders(store.get(base)) == []  # the build's lease on its base is gone
        notes = store.manifest(store.get("app:1")).annotations
        assert notes["org.opencontainers.image.base.name"] == "base:1"
        assert notes["org.opencontainers.image.base.digest"] == store.get(base).manifest_digest
    finally:
        store.db.close()


def test_rebuild_is_fully_cached_with_the_same_id(root: Path, ctx: Path, base: str) -> None:
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    first = portside(root, "build", "--progress", "plain", "-t", "app:1", str(ctx))
    again = portside(root, "build", "--progress", "plain", "-t", "app:1", str(ctx))
    assert first.stdout == again.stdout
    steps = statuses(again.stderr)
    assert len(steps) > 10
    assert {v for k, v in steps.items() if not k.startswith("FROM")} == {"CACHED"}
    assert "steps, " in again.stderr and " cached" in again.stderr
    fresh = portside(root, "build", "--progress", "plain", "--no-cache", str(ctx))
    assert "CACHED" not in fresh.stderr
    assert portside(root, "builder", "prune", "-f").stdout.startswith("Deleted ")
    after = portside(root, "build", "--progress", "plain", str(ctx))
    assert {v for k, v in statuses(after.stderr).items() if not k.startswith("FROM")} == {"DONE"}


def test_a_changed_file_invalidates_from_its_copy_on(root: Path, ctx: Path, base: str) -> None:
    (ctx / "Dockerfile").write_text(
        "FROM base:1\nCOPY hello.txt /a/\nCOPY src /b/\nENV X=1\nCOPY hello.txt /c/\n"
    )
    first = portside(root, "build", "--progress", "plain", str(ctx))
    (ctx / "src" / "app.py").write_text("print('changed')\n")
    second = portside(root, "build", "--progress", "plain", str(ctx))
    assert first.stdout != second.stdout
    steps = statuses(second.stderr)
    assert steps["COPY hello.txt /a/"] == "CACHED"
    assert steps["COPY src /b/"] == "DONE"
    assert steps["ENV X=1"] == "DONE"
    assert steps["COPY hello.txt /c/"] == "DONE"
    layers = layer_files(root, second.stdout.strip())
    assert layers[2]["b/app.py#data"] == b"print('changed')\n"


def test_dockerignored_source_fails_with_a_hint(root: Path, ctx: Path) -> None:
    (ctx / "Dockerfile").write_text("FROM scratch\n\nCOPY secret.key /\n")
    proc = portside(root, "build", str(ctx), ok=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "Error: Dockerfile:3: COPY secret.key: the file is excluded by .dockerignore"
        " (remove it from there to copy it)"
    )


def test_errors_name_the_dockerfile_line(root: Path, ctx: Path) -> None:
    (ctx / "Containerfile").write_text("FROM scratch\nCOPY missing.txt /\n")
    proc = portside(root, "build", str(ctx), ok=False)
    assert "Error: Containerfile:2: COPY missing.txt: not found in the build context" in proc.stderr
    (ctx / "bad.Dockerfile").write_text("FROM scratch\nCOPY --bogus a b\n")
    proc = portside(root, "build", "-f", str(ctx / "bad.Dockerfile"), str(ctx), ok=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith("bad.Dockerfile:2: COPY: unknown flag --bogus")


MULTI = """\
FROM scratch AS deps
COPY src/lib /lib/
FROM scratch AS broken
COPY does-not-exist /
FROM scratch AS tools
COPY hello.txt /tools/
FROM scratch AS app
COPY --from=deps /lib /app/lib
COPY --from=2 /tools/hello.txt /app/
COPY --from=base:1 /etc/passwd /app/passwd
"""


def test_multistage_builds_only_what_the_target_needs(root: Path, ctx: Path, base: str) -> None:
    (ctx / "Dockerfile").write_text(MULTI)
    proc = portside(
        root, "build", "--progress", "plain", "--target", "app", "-t", "multi", str(ctx)
    )
    assert "[broken" not in proc.stderr  # never built, so its missing file never failed
    assert "[deps 1/1]" in proc.stderr and "[tools 1/1]" in proc.stderr
    layers = layer_files(root, "multi")
    assert len(layers) == 3
    assert layers[0]["app/lib/util.py#data"] == b"X = 1\n"
    assert layers[1]["app/hello.txt#data"] == b"hello\n"
    assert layers[2]["app/passwd#data"] == PASSWD
    only = portside(root, "build", "--progress", "plain", "--target", "tools", str(ctx))
    assert "[deps" not in only.stderr and "[app" not in only.stderr
    bad = portside(root, "build", "--target", "broken", str(ctx), ok=False)
    assert "Dockerfile:4: COPY does-not-exist: not found" in bad.stderr
    nope = portside(root, "build", "--target", "nope", str(ctx), ok=False)
    assert "target stage 'nope' could not be found" in nope.stderr


def test_global_args_only_in_from_unless_redeclared(root: Path, ctx: Path, base: str) -> None:
    (ctx / "Dockerfile").write_text(
        "ARG TAG=1\nARG WHO=world\nFROM base:${TAG}\nENV A=${WHO:-unset}\nARG WHO\nENV B=$WHO\n"
    )
    portside(root, "build", "-t", "args", "--build-arg", "WHO=you", str(ctx))
    env = image_config(root, "args")["config"]["Env"]
    assert "A=unset" in env and "B=you" in env


def test_onbuild_triggers_run_in_the_child(root: Path, ctx: Path, store: ImageStore) -> None:
    add_image(
        store,
        [{"etc/x": b"x"}],
        tags=("onbuild:1",),
        config={"OnBuild": ["COPY hello.txt /from-trigger/"]},
    )
    (ctx / "Dockerfile").write_text("FROM onbuild:1\nENV A=1\n")
    proc = portside(root, "build", "--progress", "plain", "-t", "child", str(ctx))
    assert "COPY hello.txt /from-trigger/" in proc.stderr
    assert layer_files(root, "child")[1]["from-trigger/hello.txt#data"] == b"hello\n"
    assert not image_config(root, "child")["config"].get("OnBuild")


def test_reproducible_builds_give_the_same_digest(tmp_path: Path, ctx: Path) -> None:
    (ctx / "Dockerfile").write_text(
        'FROM scratch\nCOPY . /app/\nCOPY <<EOF /x\nhi\nEOF\nCMD ["x"]\n'
    )
    ids = []
    for n in range(2):
        r = tmp_path / f"root{n}"
        r.mkdir()
        os.utime(ctx / "hello.txt", (1_900_000_000 + n, 1_900_000_000 + n))  # after the epoch
        ids.append(
            portside(
                r, "build", "--reproducible", str(ctx), env={"SOURCE_DATE_EPOCH": "1700000000"}
            ).stdout
        )
        cfg = image_config(r, ids[-1].strip())
        assert cfg["created"] == "2023-11-14T22:13:20Z"
        for files in layer_files(r, ids[-1].strip()):
            infos = [i for i in files.values() if isinstance(i, tarfile.TarInfo)]
            assert infos and all(i.mtime <= 1_700_000_000 for i in infos)
    assert ids[0] == ids[1]


def test_git_checkout_labels(root: Path, ctx: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(ctx), *args], check=True, capture_output=True, text=True
        ).stdout.strip()

    git("init", "-q")
    git("-c", "user.email=t@x", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "x")
    git("remote", "add", "origin", "https://user:tok3n@git.example.com/app.git")
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /\n")
    portside(root, "build", "-t", "traced", str(ctx))
    cfg = image_config(root, "traced")
    labels = cfg["config"]["Labels"]
    assert labels["org.opencontainers.image.revision"] == git("rev-parse", "HEAD")
    assert labels["org.opencontainers.image.source"] == "https://git.example.com/app.git"
    assert labels["io.portside.image.revision.dirty"] == "true"  # untracked files
    assert labels["org.opencontainers.image.created"] == cfg["created"]
    git("add", "-A")
    git("-c", "user.email=t@x", "-c", "user.name=t", "commit", "-q", "-m", "all")
    portside(root, "build", "-t", "traced", str(ctx))
    labels = image_config(root, "traced")["config"]["Labels"]
    assert labels["io.portside.image.revision.dirty"] == "false"
    assert labels["org.opencontainers.image.revision"] == git("rev-parse", "HEAD")


def test_output_oci_archive(root: Path, ctx: Path, tmp_path: Path) -> None:
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /\n")
    dest = tmp_path / "app.tar"
    portside(root, "build", "-t", "out:1", "--output", f"type=oci,dest={dest}", str(ctx))
    with tarfile.open(dest) as t:
        names = t.getnames()
        member = t.extractfile("index.json")
        assert member is not None
        index = json.loads(member.read())
    assert "oci-layout" in names and index["manifests"]


def test_output_local_directory(root: Path, ctx: Path, tmp_path: Path) -> None:
    (ctx / "Dockerfile").write_text(
        "FROM scratch\nCOPY src /app/\nCOPY hello.txt /app/\nCOPY --chmod=0600 hello.txt /x\n"
    )
    dest = tmp_path / "rootfs"
    portside(root, "build", "-o", f"type=local,dest={dest}", str(ctx))
    assert (dest / "app" / "hello.txt").read_text() == "hello\n"
    assert (dest / "app" / "lib" / "util.py").read_text() == "X = 1\n"
    assert (dest / "x").stat().st_mode & 0o777 == 0o600
    again = portside(root, "build", "-o", f"type=local,dest={dest}", str(ctx), ok=False)
    assert "exists and is not an empty directory" in again.stderr


def test_image_prune_keeps_the_build_cache_and_builder_prune_drops_it(tmp_path: Path, root: Path) -> None:
    """Like Docker: removing the image leaves cached steps; `builder prune` removes them."""
    from portside.store.images import ImageStore

    ctx_dir = tmp_path / "ctx"
    ctx_dir.mkdir()
    (ctx_dir / "app.txt").write_text("hello")
    (ctx_dir / "Dockerfile").write_text("FROM scratch\nCOPY app.txt /app.txt\n")
    portside(root, "build", "-t", "cached:1", str(ctx_dir))
    portside(root, "rmi", "cached:1")
    store = ImageStore(root)
    assert list(store.content.digests()), "the cached step's layer went with the image"
    again = portside(root, "build", "--progress", "plain", "-t", "cached:1", str(ctx_dir))
    assert "CACHED" in statuses(again.stderr).values()
    portside(root, "rmi", "cached:1")
    portside(root, "builder", "prune", "-f")
    assert list(store.content.digests()) == []
