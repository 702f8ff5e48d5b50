"""RUN steps in real containers (crun + conmon) from a busybox base, through the CLI."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import pytest

from portside.store.images import ImageStore

from .test_build_cli import image_config, layer_files, portside, statuses

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in ("crun", "conmon")),
    reason="RUN needs root, crun and conmon",
)


@pytest.fixture
def busybox(store: ImageStore) -> str:
    from portside.store.bootstrap import BootstrapError, bootstrap_busybox

    try:
        bootstrap_busybox(store, ("busybox:latest",))
    except BootstrapError as exc:
        pytest.skip(str(exc))
    return "busybox"


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    c = tmp_path / "ctx"
    c.mkdir()
    (c / "input.txt").write_text("from the context\n")
    return c


def no_leftovers(root: Path) -> None:
    containers = root / "build" / "containers"
    left = (
        [p.name for p in containers.iterdir() if not p.name.startswith(".")]
        if containers.exists()
        else []
    )
    assert left == []
    with open("/proc/self/mounts") as f:
        assert str(root) not in f.read()
    from portside.runtime import cgroups

    assert not [h for h in cgroups.detect().hierarchies() if (Path(h) / "portside-build").exists()]


def test_run_writes_a_layer_and_rebuilds_cached(root: Path, ctx: Path, busybox: str) -> None:
    (ctx / "Dockerfile").write_text(
        "FROM busybox\nWORKDIR /app\nCOPY input.txt .\n"
        'RUN cat input.txt > copy.txt && echo "$GREETING" > greeting && rm /bin/vi\n'
        'ENV GREETING=hi\nRUN echo "$GREETING" > /app/greeting2\n'
        "RUN <<EOF\nset -e\necho heredoc > /app/heredoc.txt\nEOF\n"
        "RUN cat <<EOF > /app/conf\nhome=$HOME\nEOF\n"
    )
    first = portside(root, "build", "--progress", "plain", "-t", "ran", str(ctx))
    layers = layer_files(root, "ran")
    run1, run2, run3, run4 = layers[-4:]
    assert run1["app/copy.txt#data"] == b"from the context\n"
    assert "bin/.wh.vi" in run1  # a deletion is an OCI whiteout
    assert run2["app/greeting2#data"] == b"hi\n"
    assert run3["app/heredoc.txt#data"] == b"heredoc\n"
    assert run4["app/conf#data"] == b"home=/root\n"
    assert not any(k.startswith(("proc", "sys", "dev", "etc/resolv.conf")) for k in run1)
    again = portside(root, "build", "--progress", "plain", "-t", "ran", str(ctx))
    assert again.stdout == first.stdout
    assert {v for k, v in statuses(again.stderr).items() if k.startswith("RUN")} == {"CACHED"}
    no_leftovers(root)


def test_run_failure_names_line_exit_code_and_output(root: Path, ctx: Path, busybox: str) -> None:
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n\nRUN echo step one; echo 'no such package: foo' >&2; exit 3\n"
    )
    proc = portside(root, "build", "--progress", "plain", str(ctx), ok=False)
    assert proc.returncode == 1
    assert "  step one" in proc.stderr  # output streamed
    assert proc.stderr.strip().splitlines()[-1] == (
        "Error: Dockerfile:3: RUN echo step one; echo 'no such package: foo' >&2; exit 3"
        " failed with exit code 3: step one | no such package: foo"
    )
    no_leftovers(root)


def test_secrets_never_land_in_a_layer(root: Path, ctx: Path, busybox: str, tmp_path: Path) -> None:
    secret = tmp_path / "npmrc"
    secret.write_text("token=s3cr3t-VALUE-42\n")
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        "RUN --mount=type=secret,id=npmrc grep -q s3cr3t /run/secrets/npmrc && echo ok > /ok\n"
        "RUN --mount=type=secret,id=npmrc,target=/root/.npmrc,mode=0444 cp /root/.npmrc /dev/null\n"
        "RUN --mount=type=secret,id=missing test ! -e /run/secrets/missing\n"
    )
    portside(root, "build", "--secret", f"id=npmrc,src={secret}", "-t", "sec", str(ctx))
    store = ImageStore(root)
    try:
        image = store.get("sec")
        blobs = [store.content.read(d.digest) for d in store.manifest(image).layers]
        config = store.content.read(image.config_digest)
    finally:
        store.db.close()
    for blob in blobs:
        assert b"s3cr3t-VALUE-42" not in gzip.decompress(blob)
    assert b"s3cr3t-VALUE-42" not in config
    layers = layer_files(root, "sec")
    assert layers[1]["ok#data"] == b"ok\n"
    assert not any(k.startswith(("run", "root/.npmrc")) for layer in layers[1:] for k in layer)
    required = ctx / "Dockerfile"
    required.write_text("FROM busybox\nRUN --mount=type=secret,id=x,required=true true\n")
    proc = portside(root, "build", str(ctx), ok=False)
    assert "Dockerfile:2: RUN: secret 'x' is required but was not given" in proc.stderr


def test_cache_mounts_persist_between_builds(root: Path, ctx: Path, busybox: str) -> None:
    (ctx / "Dockerfile").write_text(
        "FROM busybox\nRUN --mount=type=cache,target=/var/cache/app,sharing=locked "
        "echo run >> /var/cache/app/runs && wc -l < /var/cache/app/runs > /count\n"
    )
    portside(root, "build", "-t", "c1", str(ctx))
    portside(root, "build", "--no-cache", "-t", "c2", str(ctx))
    assert layer_files(root, "c1")[-1]["count#data"].strip() == b"1"
    assert layer_files(root, "c2")[-1]["count#data"].strip() == b"2"
    assert not any(k.startswith("var/cache/app") for k in layer_files(root, "c2")[-1])


def test_network_none_and_bind_mount(root: Path, ctx: Path, busybox: str) -> None:
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        "RUN --network=none cat /proc/net/dev | grep -c : > /ifaces\n"
        "RUN --mount=type=bind,source=input.txt,target=/mnt/in.txt cp /mnt/in.txt /copied\n"
    )
    portside(root, "build", "-t", "net", str(ctx))
    layers = layer_files(root, "net")
    assert layers[-2]["ifaces#data"].strip() == b"1"  # only lo
    assert layers[-1]["copied#data"] == b"from the context\n"
    assert "mnt/in.txt" not in layers[-1]
    assert image_config(root, "net")["history"][-1]["comment"] == "Dockerfile:3"


def test_secret_from_environment(root: Path, ctx: Path, busybox: str) -> None:
    (ctx / "Dockerfile").write_text(
        "FROM busybox\nRUN --mount=type=secret,id=tok,env=X "
        'test "$(cat /run/secrets/tok)" = from-env-77 && test "$X" = from-env-77'
        " && echo good > /result\n"
    )
    portside(
        root,
        "build",
        "--secret",
        "id=tok,env=MY_TOKEN",
        "-t",
        "envsec",
        str(ctx),
        env={"MY_TOKEN": "from-env-77"},
    )
    layers = layer_files(root, "envsec")
    assert layers[-1]["result#data"] == b"good\n"
    assert all(
        b"from-env-77" not in v for layer in layers for v in layer.values() if isinstance(v, bytes)
    )


def test_run_as_an_unknown_user_names_the_line(root: Path, ctx: Path, busybox: str) -> None:
    (ctx / "Dockerfile").write_text("FROM busybox\nUSER ghost\nRUN true\n")
    proc = portside(root, "build", str(ctx), ok=False)
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: Dockerfile:3: RUN: unable to find user ghost")
    no_leftovers(root)


def test_build_wide_network_proxy_args_and_iidfile(
    root: Path, ctx: Path, busybox: str, tmp_path: Path
) -> None:
    (ctx / "Dockerfile").write_text(
        'FROM busybox\nRUN cat /proc/net/dev | grep -c : > /ifaces; echo "$HTTP_PROXY" > /proxy\n'
    )
    iid = tmp_path / "iid"
    out = portside(
        root,
        "build",
        "-q",
        "--network",
        "none",
        "--iidfile",
        str(iid),
        "--build-arg",
        "HTTP_PROXY=http://proxy:3128",
        str(ctx),
    )
    assert iid.read_text() == out.stdout.strip()
    layer = layer_files(root, out.stdout.strip())[-1]
    assert layer["ifaces#data"].strip() == b"1"
    assert layer["proxy#data"] == b"http://proxy:3128\n"
    assert "proxy:3128" not in str(image_config(root, out.stdout.strip()))  # not in the image
    assert "not consumed" not in out.stderr


def test_bind_from_a_stage_rw_copy_and_tmpfs(root: Path, ctx: Path, busybox: str) -> None:
    (ctx / "Dockerfile").write_text(
        "FROM busybox AS tools\nRUN mkdir /out && echo tool-output > /out/result\n"
        "FROM busybox\n"
        "RUN --mount=type=bind,from=tools,source=/out,target=/in cp /in/result /from-stage\n"
        "RUN --mount=type=bind,target=/src,rw echo scribble > /src/input.txt && cat /src/input.txt"
        " > /rw\n"
        "RUN --mount=type=tmpfs,target=/scratch echo t > /scratch/t && ls /scratch > /tmp-listing\n"
    )
    portside(root, "build", "-t", "binds", str(ctx))
    stage_copy, rw, tmp = layer_files(root, "binds")[-3:]
    assert stage_copy["from-stage#data"] == b"tool-output\n"
    assert rw["rw#data"] == b"scribble\n"
    assert (ctx / "input.txt").read_text() == "from the context\n"  # the context is untouched
    assert tmp["tmp-listing#data"] == b"t\n"
    assert not any(k.startswith(("in/", "src", "scratch")) for k in [*stage_copy, *rw, *tmp])


def test_reproducible_run_steps(tmp_path: Path, ctx: Path) -> None:
    from portside.store.bootstrap import BootstrapError, bootstrap_busybox

    (ctx / "Dockerfile").write_text(
        "FROM busybox\nRUN mkdir -p /opt/app && echo built > /opt/app/out && rm /bin/vi\n"
        "COPY input.txt /opt/app/\n"
    )
    ids = []
    for n in range(2):
        r = tmp_path / f"root{n}"
        r.mkdir()
        store = ImageStore(r)
        try:
            bootstrap_busybox(store, ("busybox:latest",))
        except BootstrapError as exc:
            pytest.skip(str(exc))
        finally:
            store.db.close()
        out = portside(
            r, "build", "-q", "--reproducible", str(ctx), env={"SOURCE_DATE_EPOCH": "1700000000"}
        )
        ids.append(out.stdout.strip())
        no_leftovers(r)
    assert ids[0] == ids[1]
