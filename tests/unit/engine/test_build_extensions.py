"""portside's extensions of `POST /build` alone: the step messages both ways, the extension
query, the secrets' multipart body (read by aiohttp, as the daemon reads it) and the
client's context tar."""

from __future__ import annotations

import asyncio
import io
import json
import os
import tarfile
from pathlib import Path
from unittest import mock

import pytest
from aiohttp.streams import StreamReader
from aiohttp.test_utils import make_mocked_request
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, MultiDict

from portside.client.buildcontext import BuildUpload, ContextStream, plan
from portside.engine.api.build import parse_request, read_secrets
from portside.engine.buildsteps import StepOutput, replay
from portside.errors import InvalidArgument


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def plan(self, steps: int) -> None:
        self.calls.append(("plan", steps))

    def step(self, label: str, text: str, status: str, seconds: float, *, ident: str = "",
             written: str = "") -> None:
        self.calls.append(("step", label, text, status, seconds))

    def running(self, label: str, text: str) -> None:
        self.calls.append(("running", label, text))

    def note(self, text: str) -> None:
        self.calls.append(("note", text))

    def output(self, text: str) -> None:
        self.calls.append(("output", text))


calls = st.one_of(
    st.tuples(st.just("plan"), st.integers(0, 10_000)),
    st.tuples(st.just("step"), st.text(), st.text(), st.sampled_from(["DONE", "CACHED"]),
              st.floats(0, 1e4).map(lambda f: round(f, 3))),
    st.tuples(st.just("running"), st.text(), st.text()),
    st.tuples(st.just("note"), st.text()),
    st.tuples(st.just("output"), st.text()),
)


@given(st.lists(calls, max_size=20))
def test_step_messages_replay_what_the_builder_said(said: list[tuple[object, ...]]) -> None:
    sent: list[dict[str, object]] = []
    out = StepOutput(lambda m: sent.append(json.loads(json.dumps(m))))  # through JSON
    for call in said:
        getattr(out, str(call[0]))(*call[1:])
    heard = Recorder()
    assert all(replay(m, heard) for m in sent)
    assert heard.calls == said


def test_other_messages_are_not_steps() -> None:
    assert not replay({"stream": "Step 1/2 : FROM busybox\n"}, Recorder())
    assert not replay({"aux": {"ID": "sha256:1"}}, Recorder())


def test_the_extension_query() -> None:
    request = parse_request(MultiDict([
        ("t", "a:1"), ("push", "1"), ("reproducible", "1"), ("epoch", "86400"), ("steps", "1"),
        ("dockerfile_name", "Dockerfile"),
        ("git", json.dumps({"revision": "abc", "source": "https://u:tok@h/x.git",
                            "dirty": True, "commit_time": 5})),
    ]))
    assert request.push and request.reproducible and request.steps
    assert request.epoch == 86400 and request.dockerfile_name == "Dockerfile"
    assert request.git is not None and request.git.source == "https://h/x.git"  # no token
    assert request.git.dirty and request.git.commit_time == 5
    plain = parse_request(MultiDict([("t", "a")]))
    assert not plain.push and plain.epoch is None and plain.git is None and not plain.steps
    for bad in ([("epoch", "yesterday")], [("git", '{"revision": 1}')], [("git", "[1]")]):
        with pytest.raises(InvalidArgument):
            parse_request(MultiDict(bad))


def _context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    (ctx / "keep").mkdir(parents=True)
    (ctx / "keep" / "a.txt").write_text("a")
    (ctx / "secret.key").write_text("never sent")
    (ctx / "Dockerfile").write_text("FROM scratch\n")
    (ctx / ".dockerignore").write_text("secret.key\nDockerfile\n.dockerignore\n")
    return ctx


def _members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: (tar.extractfile(m).read() if m.isreg() else b"")  # type: ignore[union-attr]
                for m in tar}


def test_the_context_leaves_ignored_content_behind(tmp_path: Path) -> None:
    sent = _members(_read(ContextStream(plan(_context(tmp_path), None, None))))
    assert sent["keep/a.txt"] == b"a"
    assert sent["secret.key"] == b""  # its name (for the hint), never its content
    assert sent["Dockerfile"] == b"FROM scratch\n"  # sent although ignored, as docker does
    assert ".dockerignore" in sent


def test_a_dockerfile_from_stdin_is_added_under_its_own_name(tmp_path: Path) -> None:
    p = plan(_context(tmp_path), None, "FROM busybox\n")
    assert p.dockerfile.startswith(".dockerfile.")
    assert _members(_read(ContextStream(p)))[p.dockerfile] == b"FROM busybox\n"
    with pytest.raises(InvalidArgument):
        plan(tmp_path / "missing", None, None)


def _read(source: ContextStream | BuildUpload) -> bytes:
    out = b""
    while block := source.read(1 << 16):
        out += block
    return out


def test_secrets_come_before_the_context_in_one_body(tmp_path: Path) -> None:
    upload = BuildUpload({"tok": b"v4lue\r\n--x", "other": b""},
                         ContextStream(plan(_context(tmp_path), None, None)))
    body = _read(upload)

    async def parse() -> tuple[dict[str, bytes], bytes]:
        loop = asyncio.get_running_loop()
        protocol = mock.Mock(_reading_paused=False)  # the connection under the stream
        stream = StreamReader(protocol, 1 << 16, loop=loop)
        stream.feed_data(body)
        stream.feed_eof()
        request = make_mocked_request(
            "POST", "/build", headers=CIMultiDict({"Content-Type": upload.content_type}),
            payload=stream)
        found, part = await read_secrets(request)
        context = b""
        while chunk := await part.read_chunk(1 << 16):
            context += chunk
        return found, context

    found, context = asyncio.run(parse())
    assert found == {"tok": b"v4lue\r\n--x", "other": b""}
    assert _members(context)["keep/a.txt"] == b"a"


def test_a_plain_body_is_the_context() -> None:
    async def parse() -> dict[str, bytes]:
        request = make_mocked_request("POST", "/build", headers=CIMultiDict(
            {"Content-Type": "application/x-tar"}))
        found, _ = await read_secrets(request)
        return found

    assert asyncio.run(parse()) == {}


def test_a_deep_stale_context_is_removed_when_builds_start(tmp_path: Path) -> None:
    """A context thousands of directories deep (deeper than Python's recursion limit), left
    by a crash, does not stop the daemon from starting."""
    from types import SimpleNamespace

    from portside.engine.builds import Builds

    level = str(tmp_path / "tmp" / "context-left")
    os.makedirs(level)
    for _ in range(1200):  # os.makedirs itself recurses
        level = os.path.join(level, "d")
        os.mkdir(level)
    Builds(SimpleNamespace(root=tmp_path))  # type: ignore[arg-type]
    assert list((tmp_path / "tmp").iterdir()) == []
