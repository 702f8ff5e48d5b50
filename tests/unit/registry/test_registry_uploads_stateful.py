"""Random sequences of upload operations: only whole, verified blobs ever become visible."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.regserver import RunningRegistry, http, run_registry
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from portside.registry import server as srv


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Uploads(RuleBasedStateMachine):
    """The model: each open upload holds the bytes the server accepted so far."""

    reg: RunningRegistry
    runs = 0
    uploads = Bundle("uploads")

    def __init__(self) -> None:
        super().__init__()
        Uploads.runs += 1
        self.repo = f"fuzz/run{Uploads.runs}"  # one server for all runs: a repository each
        self.accepted: dict[str, bytes] = {}  # location -> bytes
        self.published: set[str] = set()

    @rule(target=uploads)
    def start(self) -> str:
        status, headers, _ = http(self.reg, "POST", f"/v2/{self.repo}/blobs/uploads/")
        assert status == 202
        self.accepted[headers["Location"]] = b""
        return str(headers["Location"])

    @rule(loc=uploads, data=st.binary(max_size=64), offset=st.integers(-2, 2),
          ranged=st.booleans())
    def patch(self, loc: str, data: bytes, offset: int, ranged: bool) -> None:
        if loc not in self.accepted:
            assert http(self.reg, "PATCH", loc, data)[0] == 404
            return
        have = len(self.accepted[loc])
        start = max(have + offset, 0)
        headers = {"Content-Range": f"{start}-{start + len(data) - 1}"} if ranged and data else {}
        status, got, _ = http(self.reg, "PATCH", loc, data, headers)
        if headers and start != have:
            assert status == 416 and got["Range"] == f"0-{max(have - 1, 0)}"
        else:
            assert status == 202
            self.accepted[loc] += data

    @rule(loc=uploads, honest=st.booleans(), tail=st.binary(max_size=16))
    def finish(self, loc: str, honest: bool, tail: bytes) -> None:
        if loc not in self.accepted:
            assert http(self.reg, "PUT", f"{loc}?digest={sha(b'x')}")[0] == 404
            return
        whole = self.accepted[loc] + tail
        digest = sha(whole) if honest else sha(whole + b"!")
        status, _, _ = http(self.reg, "PUT", f"{loc}?digest={digest}", tail or None)
        if honest:
            assert status == 201
            del self.accepted[loc]
            self.published.add(digest)
        else:
            assert status == 400
            self.accepted[loc] = whole

    @rule(loc=uploads)
    def cancel(self, loc: str) -> None:
        status = http(self.reg, "DELETE", loc)[0]
        assert status == (204 if loc in self.accepted else 404)
        self.accepted.pop(loc, None)

    @invariant()
    def only_verified_blobs_are_visible(self) -> None:
        storage = self.reg.registry.storage
        content = storage.content
        visible = {d for d in self.published | set(content.digests())
                   if storage.has_blob(self.repo, d)}
        assert visible == self.published
        for digest in content.digests():  # every blob on disk is whole and verified
            assert sha(content.read(digest)) == digest


@pytest.fixture
def machine(tmp_path: Path) -> Callable[[], None]:
    running, stop = run_registry(srv.open_registry(tmp_path / "reg"))

    def run() -> None:
        Uploads.reg = running
        Uploads.TestCase.settings = settings(max_examples=30, stateful_step_count=25, deadline=None)
        try:
            Uploads.TestCase().runTest()
        finally:
            stop()

    return run


def test_random_upload_sequences(machine: Callable[[], None]) -> None:
    machine()
