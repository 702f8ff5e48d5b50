"""COPY/ADD and config semantics a Docker user relies on, checked in the built image."""

from __future__ import annotations

import hashlib
import http.server
import os
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.imagefactory import add_image

from portside.store.images import ImageStore
from portside.trees import remove_tree

from .test_build_cli import image_config, layer_files, portside


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    c = tmp_path / "ctx"
    (c / "dir" / "sub").mkdir(parents=True)
    (c / "a.txt").write_text("A")
    (c / "b.txt").write_text("B")
    (c / "dir" / "x.py").write_text("X")
    (c / "dir" / "sub" / "y.py").write_text("Y")
    (c / "dir" / "notes.md").write_text("N")
    os.symlink("a.txt", c / "alink")
    os.symlink("x.py", c / "dir" / "xlink")
    return c


@pytest.fixture
def base(store: ImageStore) -> str:
    tmp = tarfile.TarInfo("tmp")
    tmp.type, tmp.mode = tarfile.DIRTYPE, 0o1777
    add_image(
        store,
        [{"usr/bin/tool": b"t", "tmp": tmp, "etc/passwd": b"root:x:0:0::/:/bin/sh\n"}],
        tags=("base:1",),
        config={"Cmd": ["tool"], "Env": ["PATH=/usr/bin"]},
    )
    return "base:1"


def build(root: Path, ctx: Path, dockerfile: str, *args: str, ok: bool = True) -> str:
    (ctx / "Dockerfile").write_text(dockerfile)
    proc = portside(root, "build", "-q", *args, str(ctx), ok=ok)
    return proc.stdout.strip() if ok else proc.stderr.strip().splitlines()[-1]


def test_copy_destinations_follow_docker_rules(root: Path, ctx: Path, base: str) -> None:
    image = build(
        root,
        ctx,
        "FROM base:1\n"
        "COPY a.txt /usr/bin\n"  # an existing directory: the file goes inside
        "COPY a.txt /new/name.txt\n"  # a new path without a slash: that file
        "COPY a.txt b.txt /many/\n"
        "COPY dir/*.py /py/\n"  # globs match one level
        "COPY dir /d\n"  # a directory's contents, not the directory
        "COPY alink dir/xlink /links/\n"
        "COPY --exclude=*.md --exclude=sub dir /ex/\n"
        "COPY --chown=7:8 --chmod=640 a.txt /owned\n"
        "COPY --chmod=0000 a.txt /dotdir/.\n",
    )
    bin_, new, many, py, d, links, ex, owned, dot = layer_files(root, image)[1:]
    assert dot["dotdir/a.txt"].mode == 0  # "/dir/." names a directory; --chmod=0000 is 0
    assert bin_["usr/bin/a.txt#data"] == b"A"
    assert "usr/bin" not in bin_  # the existing directory keeps its metadata
    assert new["new/name.txt#data"] == b"A" and new["new"].isdir()
    assert many["many/a.txt#data"] == b"A" and many["many/b.txt#data"] == b"B"
    assert sorted(k for k in py if not k.endswith("#data")) == ["py", "py/x.py"]
    assert d["d/x.py#data"] == b"X" and d["d/sub/y.py#data"] == b"Y" and "d/dir" not in d
    assert links["links/alink#data"] == b"A"
    assert links["links/xlink#data"] == b"X"  # named sources are followed
    assert d["d/xlink"].issym() and d["d/xlink"].linkname == "x.py"  # links inside stay links
    assert "ex/x.py" in ex and "ex/notes.md" not in ex and "ex/sub/y.py" not in ex
    info = owned["owned"]
    assert (info.uid, info.gid, info.mode) == (7, 8, 0o640)
    assert all(i.uid == 0 for i in d.values() if isinstance(i, tarfile.TarInfo))


def test_copy_errors(root: Path, ctx: Path) -> None:
    assert build(root, ctx, "FROM scratch\nCOPY a.txt b.txt /notadir\n", ok=False) == (
        "Error: Dockerfile:2: COPY: with more than one source the destination must be a"
        " directory ending in / ('/notadir')"
    )
    assert build(root, ctx, "FROM scratch\nCOPY *.none /x/\n", ok=False) == (
        "Error: Dockerfile:2: COPY *.none: not found in the build context"
    )
    assert build(root, ctx, "FROM scratch\nCOPY --chown=nobody a.txt /x\n", ok=False) == (
        "Error: Dockerfile:2: COPY --chown=nobody: no 'nobody' in the stage's /etc/passwd"
    )
    assert build(root, ctx, 'FROM scratch\nENV A="${B:?needs B}"\n', ok=False) == (
        "Error: Dockerfile:2: ENV: B: needs B"
    )
    assert build(root, ctx, "FROM scratch\nARG M=rwx\nCOPY --chmod=$M a.txt /\n", ok=False) == (
        "Error: Dockerfile:3: COPY: invalid --chmod=rwx: use an octal mode like 0755"
    )
    assert build(root, ctx, "FROM scratch\nEXPOSE 80/tcpx\n", ok=False) == (
        "Error: Dockerfile:2: EXPOSE: invalid port '80/tcpx' (e.g. 80 or 53/udp)"
    )


def test_add_of_a_file_that_only_looks_like_an_archive_copies_it(root: Path, ctx: Path) -> None:
    (ctx / "broken.tar.gz").write_bytes(b"\x1f\x8b" + b"not really gzip")
    image = build(root, ctx, "FROM scratch\nADD broken.tar.gz /x/\n")
    assert layer_files(root, image)[0]["x/broken.tar.gz#data"] == b"\x1f\x8bnot really gzip"


def test_config_instructions(root: Path, ctx: Path, base: str) -> None:
    image = build(
        root,
        ctx,
        "FROM base:1\n"
        'ENTRYPOINT ["/entry"]\n'  # resets the CMD inherited from the base
        "WORKDIR /srv\nWORKDIR app\nWORKDIR /tmp\n"
        'SHELL ["/bin/bash", "-e", "-c"]\n'
        "ENV A=1\nENV A=2 B=$A\n"
        "STOPSIGNAL 9\nUSER 1000:1000\nEXPOSE 8000-8002/udp\n"
        "ONBUILD RUN make\nMAINTAINER someone\n"
        "HEALTHCHECK NONE\n"
        "CMD run --fast\n",
    )
    cfg = image_config(root, image)["config"]
    assert cfg["Entrypoint"] == ["/entry"]
    assert cfg["Cmd"] == ["/bin/bash", "-e", "-c", "run --fast"]
    assert cfg["WorkingDir"] == "/tmp"
    assert "A=2" in cfg["Env"] and "B=1" in cfg["Env"]  # one ENV line sees the values before it
    assert cfg["StopSignal"] == "9" and cfg["User"] == "1000:1000"
    assert set(cfg["ExposedPorts"]) == {"8000/udp", "8001/udp", "8002/udp"}
    assert cfg["OnBuild"] == ["RUN make"] and cfg["Healthcheck"] == {"Test": ["NONE"]}
    assert cfg["Labels"] == {"maintainer": "someone"}
    layers = layer_files(root, image)
    assert len(layers) == 3  # WORKDIR /srv and /srv/app are created; /tmp exists already
    assert "srv" in layers[1] and "srv/app" in layers[2]
    assert "tmp" not in layers[2]


def test_backtick_escape_and_heredoc_copy(root: Path, ctx: Path) -> None:
    image = build(
        root,
        ctx,
        "# escape=`\nFROM scratch\nENV P=c:\\app `\n  Q=2\n"
        "COPY <<-EOT <<'RAW' /etc/\n\tvalue $P\n\tEOT\nraw $P\nRAW\n",
    )
    cfg = image_config(root, image)["config"]
    assert "P=c:\\app" in cfg["Env"] and "Q=2" in cfg["Env"]
    files = layer_files(root, image)[0]
    assert files["etc/EOT#data"] == b"value c:\\app\n"
    assert files["etc/RAW#data"] == b"raw $P\n"


@pytest.fixture
def web(tmp_path: Path) -> Iterator[str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "tool.bin").write_bytes(b"binary tool")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, directory=str(site), **kw)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_add_url_with_checksum(root: Path, ctx: Path, web: str) -> None:
    good = "sha256:" + hashlib.sha256(b"binary tool").hexdigest()
    image = build(
        root,
        ctx,
        f"FROM scratch\nADD --checksum={good} {web}/tool.bin /opt/\nADD {web}/tool.bin /renamed\n",
    )
    first, second = layer_files(root, image)
    assert first["opt/tool.bin#data"] == b"binary tool"
    assert first["opt/tool.bin"].mode == 0o600
    assert second["renamed#data"] == b"binary tool"
    bad = "sha256:" + "0" * 64
    message = build(root, ctx, f"FROM scratch\nADD --checksum={bad} {web}/tool.bin /x\n", ok=False)
    assert message.startswith(f"Error: Dockerfile:2: ADD {web}/tool.bin: checksum mismatch")
    missing = build(root, ctx, f"FROM scratch\nADD {web}/nope /x\n", ok=False)
    assert missing.startswith(f"Error: Dockerfile:2: ADD {web}/nope: download failed")


def test_dockerfile_from_stdin_and_build_args_from_env(root: Path, ctx: Path) -> None:
    import subprocess
    import sys

    env = {**os.environ, "PORTSIDE_ROOT": str(root), "WHO": "env-value"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "portside",
            "build",
            "-q",
            "-f",
            "-",
            "--build-arg",
            "WHO",
            "-t",
            "stdin:1",
            str(ctx),
        ],
        input="FROM scratch\nARG WHO\nENV WHO=$WHO\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "WHO=env-value" in image_config(root, "stdin:1")["config"]["Env"]


def test_dockerfile_specific_ignore_file_and_platform(root: Path, ctx: Path) -> None:
    (ctx / ".dockerignore").write_text("a.txt\n")
    (ctx / "prod.Dockerfile").write_text(
        "FROM --platform=$BUILDPLATFORM scratch\nCOPY a.txt b.txt /\n"
    )
    (ctx / "prod.Dockerfile.dockerignore").write_text("b.txt\n")
    proc = portside(root, "build", "-f", str(ctx / "prod.Dockerfile"), str(ctx), ok=False)
    assert "COPY a.txt b.txt /: the file" not in proc.stderr
    assert proc.stderr.strip().endswith(
        "prod.Dockerfile:2: COPY b.txt: the file is excluded by prod.Dockerfile.dockerignore"
        " (remove it from there to copy it)"
    )
    message = build(root, ctx, "FROM --platform=plan9/mips scratch\n", ok=False)
    assert message.startswith(
        "Error: Dockerfile:1: FROM --platform=plan9/mips: this host builds only for linux/"
    )


def test_file_names_that_are_not_utf8(root: Path, ctx: Path) -> None:
    name = os.path.join(os.fsencode(ctx), b"caf\xe9.txt")  # Latin-1, as old trees have
    with open(name, "wb") as f:
        f.write(b"latin")
    os.utime(name, (1_600_000_000, 1_600_000_000))
    first = build(root, ctx, "FROM scratch\nCOPY . /d/\n")
    assert build(root, ctx, "FROM scratch\nCOPY . /d/\n") == first  # hash cache and all
    store = ImageStore(root)
    try:
        blob = store.content.read(store.manifest(store.get(first)).layers[0].digest)
    finally:
        store.db.close()
    import gzip
    import io

    with tarfile.open(
        fileobj=io.BytesIO(gzip.decompress(blob)), encoding="utf-8", errors="surrogateescape"
    ) as t:
        names = [os.fsencode(m.name) for m in t]
    assert b"d/caf\xe9.txt" in names


def test_symlink_loops_and_very_deep_trees(root: Path, ctx: Path) -> None:
    os.symlink("loop2", ctx / "loop1")
    os.symlink("loop1", ctx / "loop2")
    deep = ctx / "deep"
    deep.mkdir()
    relative = "/".join(["d"] * 1200)  # deeper than Python's recursion limit
    level = str(deep)
    for _ in range(1200):  # os.makedirs itself recurses
        level = os.path.join(level, "d")
        os.mkdir(level)
    with open(os.path.join(deep, relative, "leaf"), "w") as f:
        f.write("bottom")
    try:
        image = build(root, ctx, "FROM scratch\nCOPY loop1 /l\nCOPY deep /deep\n")
        loop, tree = layer_files(root, image)
        assert loop["l"].issym() and loop["l"].linkname == "loop2"
        assert tree[f"deep/{relative}/leaf#data"] == b"bottom"
        # again: the daemon's kept copy of that context is too deep to compare with
        again = build(root, ctx, "FROM scratch\nCOPY loop1 /l\nCOPY deep /deep\n")
        assert again == image
    finally:  # bottom up, by hand: shutil.rmtree would recurse as deep as the tree
        os.unlink(os.path.join(level, "leaf"))
        while level != str(deep):
            os.rmdir(level)
            level = os.path.dirname(level)
        remove_tree(root / "build" / "contexts")  # the daemon's kept copy


def test_workdir_belongs_to_the_user(root: Path, ctx: Path, store: ImageStore) -> None:
    add_image(
        store,
        [{"etc/passwd": b"root:x:0:0::/:/bin/sh\napp:x:1000:1001::/:/bin/sh\n"}],
        tags=("users:1",),
    )
    image = build(
        root,
        ctx,
        "FROM users:1\nUSER app\nWORKDIR /home/app/src\nUSER 7:8\n"
        "WORKDIR /seven\nUSER 9\nWORKDIR /nine\nUSER ghost\nWORKDIR /ghost\n",
        ok=False,
    )
    assert (
        image == "Error: Dockerfile:9: WORKDIR (USER ghost): no 'ghost' in the stage's /etc/passwd"
    )
    image = build(
        root,
        ctx,
        "FROM users:1\nUSER app\nWORKDIR /home/app/src\nUSER 7:8\n"
        "WORKDIR /seven\nUSER 9\nWORKDIR /nine\n",
    )
    app, seven, nine = layer_files(root, image)[1:]
    assert [(app[n].uid, app[n].gid) for n in ("home", "home/app", "home/app/src")] == [
        (1000, 1001)
    ] * 3
    assert (seven["seven"].uid, seven["seven"].gid) == (7, 8)
    assert (nine["nine"].uid, nine["nine"].gid) == (9, 0)
