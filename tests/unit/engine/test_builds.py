"""The daemon's build pieces alone: the query of `POST /build`, the classic message stream,
and unpacking a client's context (every compression Docker accepts; hostile archives)."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
import zstandard
from multidict import MultiDict

from portside.build.errors import BuildError, DockerfileError
from portside.engine.api.build import parse_request
from portside.engine.buildcontext import ContextError, dockerfile_in, unpack_context
from portside.engine.builds import ClassicOutput, error_message
from portside.errors import InvalidArgument, from_wire
from portside.oci.model import host_platform
from portside.store.images import Image
from portside.store.unpack import UnpackPolicy

# -- the query ------------------------------------------------------------------------------

# What the docker 28 client sends for `DOCKER_BUILDKIT=0 docker build -t a -t b:2 .`
DOCKER_DEFAULTS = [
    ("t", "a"), ("t", "b:2"), ("remote", ""), ("q", "0"), ("nocache", "0"), ("rm", "1"),
    ("forcerm", "0"), ("pull", "0"), ("memory", "0"), ("memswap", "0"), ("cpushares", "0"),
    ("cpusetcpus", ""), ("cpusetmems", ""), ("cpuperiod", "0"), ("cpuquota", "0"),
    ("cgroupparent", ""), ("shmsize", "0"), ("dockerfile", "Dockerfile"), ("ulimits", "null"),
    ("buildargs", '{"X":"1","UNSET":null}'), ("labels", '{"a":"b"}'), ("cachefrom", "null"),
    ("networkmode", "default"), ("target", ""), ("platform", ""), ("version", "1"),
]


def test_the_docker_clients_defaults_are_accepted() -> None:
    req = parse_request(MultiDict(DOCKER_DEFAULTS))
    assert req.tags == ["a", "b:2"]
    assert req.build_args == {"X": "1"}  # `"UNSET": null`: --build-arg UNSET, not in the env
    assert req.labels == {"a": "b"}
    assert req.dockerfile == "Dockerfile"
    assert req.target is None and req.cache_from == [] and req.network == "default"
    assert not req.no_cache and not req.pull


def test_docker_py_booleans_and_cache_from() -> None:
    req = parse_request(MultiDict([("t", "x"), ("nocache", "True"), ("pull", "False"),
                                   ("rm", "False"), ("cachefrom", '["reg/app:1"]'),
                                   ("networkmode", "none"), ("target", "t")]))
    assert req.no_cache and not req.pull and req.cache_from == ["reg/app:1"]
    assert req.network == "none" and req.target == "t"


@pytest.mark.parametrize("name, value, words", [
    ("memory", "67108864", "memory limits"),
    ("shmsize", "1024", "/dev/shm"),
    ("extrahosts", "db:10.0.0.2", "extra /etc/hosts"),
    ("remote", "https://example.com/ctx.tar", "remote build contexts"),
    ("ulimits", '[{"Name":"nofile","Soft":1,"Hard":1}]', "ulimits"),
    ("cgroupparent", "/mine", "cgroup parent"),
    ("squash", "1", "squashing"),
    ("networkmode", "bridge", "networkmode=bridge"),
    ("version", "2", "BuildKit"),
    ("platform", "linux/s390x" if host_platform().architecture != "s390x" else "linux/arm64",
     "no emulation"),
    ("buildargs", "[1]", "buildargs"),
    ("labels", '{"a": 1}', "labels"),
    ("cachefrom", "{not json", "cachefrom"),
])
def test_what_the_builder_cannot_do_is_refused(name: str, value: str, words: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        parse_request(MultiDict([(name, value)]))
    assert words in str(refused.value)


def test_the_host_platform_is_accepted() -> None:
    p = host_platform()
    for platform in (f"{p.os}/{p.architecture}", p.os):
        assert parse_request(MultiDict([("platform", platform)])).tags == []


# -- the message stream ---------------------------------------------------------------------


def run_steps(out: ClassicOutput) -> None:
    out.plan(3)
    out.step("[stage-0 0/2]", "FROM busybox@sha256:1234", "RESOLVED", 0.0,
             ident="sha256:" + "a" * 64, written="FROM busybox")
    out.running("[stage-0 1/2]", "RUN make")
    out.output("compiling")
    out.step("[stage-0 1/2]", "RUN make", "DONE", 1.0, ident="sha256:" + "b" * 64,
             written="RUN make")
    out.step("[stage-0 2/2]", "CMD x", "CACHED", 0.0, ident="sha256:" + "c" * 64,
             written="CMD x")


def test_classic_stream_numbers_steps_and_names_the_image_last() -> None:
    messages: list[dict[str, Any]] = []
    out = ClassicOutput(messages.append)
    run_steps(out)
    image = Image("sha256:" + "d" * 64, "sha256:" + "e" * 64, "m", 1, "", 0.0)
    out.finish(image, ["docker.io/library/app:1"])
    assert messages == [
        {"stream": "Step 1/3 : FROM busybox\n"},
        {"stream": " ---> aaaaaaaaaaaa\n"},
        {"stream": "Step 2/3 : RUN make\n"},
        {"stream": "compiling\n"},
        {"stream": " ---> bbbbbbbbbbbb\n"},
        {"stream": "Step 3/3 : CMD x\n"},
        {"stream": " ---> Using cache\n"},
        {"stream": " ---> eeeeeeeeeeee\n"},  # the image's id, not the last step's key
        {"aux": {"ID": "sha256:" + "e" * 64}},
        {"stream": "Successfully built eeeeeeeeeeee\n"},
        {"stream": "Successfully tagged app:1\n"},
    ]
    assert out.statuses == {"RESOLVED": 1, "DONE": 1, "CACHED": 1}  # what the builder reads


def test_error_messages_carry_a_failed_runs_exit_code() -> None:
    failed = error_message(BuildError("Dockerfile", 3, "RUN false failed with exit code 7",
                                      status=7))
    text = "Dockerfile:3: RUN false failed with exit code 7"
    assert failed["errorDetail"] == {"code": 7, "message": text} and failed["error"] == text
    again = from_wire({"message": failed["error"], **failed})  # what portside's client does
    assert isinstance(again, BuildError) and again.status == 7 and again.line == 3
    assert error_message(DockerfileError("Dockerfile", 1, "bad"))["errorDetail"]["code"] == 1
    assert error_message(RuntimeError("boom"))["error"] == "internal error: boom"


# -- the context ----------------------------------------------------------------------------


def tar_of(entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
            else:
                info = tarfile.TarInfo(entry[0])
                info.size = len(entry[1])
                tar.addfile(info, io.BytesIO(entry[1]))
    return buf.getvalue()


PLAIN = tar_of([("Dockerfile", b"FROM busybox\n"), ("src/app.py", b"print(1)\n")])


@pytest.mark.parametrize("compress", [
    lambda b: b, gzip.compress, bz2.compress, lzma.compress,
    lambda b: zstandard.ZstdCompressor().compress(b),
], ids=["plain", "gzip", "bzip2", "xz", "zstd"])
def test_contexts_in_every_compression_docker_accepts(compress: Any, tmp_path: Path) -> None:
    unpack_context(io.BytesIO(compress(PLAIN)), tmp_path / "ctx")
    assert (tmp_path / "ctx" / "Dockerfile").read_bytes() == b"FROM busybox\n"
    assert (tmp_path / "ctx" / "src" / "app.py").read_bytes() == b"print(1)\n"


class Trickle(io.RawIOBase):
    """A socket's way of reading: a few bytes at a time."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, n: int = -1) -> bytes:
        chunk, self.data = self.data[:3], self.data[3:]
        return chunk


def test_short_reads_of_a_compressed_context(tmp_path: Path) -> None:
    unpack_context(Trickle(bz2.compress(PLAIN)), tmp_path / "ctx")  # type: ignore[arg-type]
    assert (tmp_path / "ctx" / "src" / "app.py").is_file()


def symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


def device(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    return info


@pytest.mark.skipif(os.geteuid() != 0, reason="unpacking as Docker does needs root")
@pytest.mark.parametrize("entries, words", [
    ([("../escape", b"x")], "'..' in the path"),
    ([("/etc/evil", b"x")], "absolute path"),
    ([symlink("up", "../../outside")], "leads outside"),
    ([symlink("dir", "/tmp"), ("dir/planted", b"x")], "symlink"),
    ([device("null")], "device nodes"),
])
def test_hostile_contexts_are_refused_and_leave_nothing(entries: Any, words: str,
                                                        tmp_path: Path) -> None:
    with pytest.raises(ContextError) as refused:
        unpack_context(io.BytesIO(tar_of(entries)), tmp_path / "ctx")
    assert words in str(refused.value)
    assert str(refused.value).startswith("build context: refusing entry")
    assert not (tmp_path / "ctx").exists()
    assert not Path("/tmp/planted").exists()


def test_not_a_tar_and_bad_compressed_data(tmp_path: Path) -> None:
    with pytest.raises(ContextError, match="not a valid tar archive"):
        unpack_context(io.BytesIO(b"hello, not a tar" * 100), tmp_path / "a")
    with pytest.raises(ContextError, match="bad compressed data"):
        unpack_context(io.BytesIO(b"BZh9" + b"garbage" * 100), tmp_path / "b")
    with pytest.raises(ContextError):
        unpack_context(io.BytesIO(lzma.compress(PLAIN)[:-20]), tmp_path / "c")
    assert not any(tmp_path.iterdir())


def test_a_context_over_the_limit_is_refused(tmp_path: Path) -> None:
    big = tar_of([("Dockerfile", b"FROM busybox\n"), ("blob", b"\0" * (1 << 20))])
    policy = UnpackPolicy(max_bytes=64 << 10, allow_devices=False)
    with pytest.raises(ContextError, match="larger than"):
        unpack_context(io.BytesIO(gzip.compress(big)), tmp_path / "ctx", policy)
    assert not (tmp_path / "ctx").exists()


def test_the_dockerfile_must_be_inside_the_context(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / "sub").mkdir(parents=True)
    (ctx / "sub" / "app.Dockerfile").write_text("FROM busybox\n")
    (tmp_path / "outside").write_text("FROM busybox\n")
    os.symlink(tmp_path / "outside", ctx / "link")
    assert dockerfile_in(ctx, "sub/app.Dockerfile") == ctx / "sub" / "app.Dockerfile"
    assert dockerfile_in(ctx, "") is None
    for name in ("link", "../outside", "nothere", "sub"):
        with pytest.raises(InvalidArgument, match="Cannot locate specified Dockerfile"):
            dockerfile_in(ctx, name)


def test_a_context_may_end_without_its_end_of_archive_marker(tmp_path: Path) -> None:
    """What the docker client sends for `docker build -f - .`: the last entry's data, then
    nothing (no padding, no zero blocks). Go's tar reader takes it; so does portside, for
    contexts only."""
    from portside.store.unpack import CorruptLayer, unpack

    data = b"FROM busybox\n"
    whole = tar_of([("a.txt", b"a" * 600), ("Dockerfile", data)])
    after_data = whole[: 512 * 4 + len(data)]  # a.txt: header + 2 blocks; Dockerfile header
    unpack_context(io.BytesIO(after_data), tmp_path / "one")
    assert (tmp_path / "one" / "Dockerfile").read_bytes() == data
    unpack_context(io.BytesIO(whole[: 512 * 3]), tmp_path / "two")  # between entries
    assert (tmp_path / "two" / "a.txt").read_bytes() == b"a" * 600
    with pytest.raises(ContextError, match="truncated"):  # inside the data: still an error
        unpack_context(io.BytesIO(after_data[:-3]), tmp_path / "three")
    with pytest.raises(CorruptLayer, match="truncated"):  # layers stay strict
        unpack(io.BytesIO(after_data), tmp_path / "four")


def test_whiteout_names_are_plain_files_in_a_context(tmp_path: Path) -> None:
    body = tar_of([("Dockerfile", b"FROM busybox\n"), (".wh.notes", b"kept\n"),
                   ("docs/.wh..wh..opq", b"also kept\n"), (".wh.dir/inner", b"in\n")])
    unpack_context(io.BytesIO(body), tmp_path / "ctx")
    assert (tmp_path / "ctx" / ".wh.notes").read_bytes() == b"kept\n"
    assert (tmp_path / "ctx" / "docs" / ".wh..wh..opq").read_bytes() == b"also kept\n"
    assert (tmp_path / "ctx" / ".wh.dir" / "inner").read_bytes() == b"in\n"
