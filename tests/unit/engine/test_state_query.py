"""Container records, lookups, list filters and Docker's STATUS column; stream frames;
safe path resolution for volumes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portside.engine import query
from portside.engine.api.streams import frame
from portside.engine.state import Container, NameInUse, NoSuchContainer, StateStore, new_state
from portside.engine.volumes import copy_up, safe_join
from portside.errors import InvalidArgument
from portside.state import MemoryBackend


def _container(cid: str, name: str, **state: object) -> Container:
    st_ = new_state()
    st_.update(state)
    return Container(cid, name, "2024-01-01T00:00:00Z", "busybox", "sha256:" + "f" * 64,
                     {"Cmd": ["sh", "-c", "echo a b"], "Labels": {"tier": "web"}},
                     {}, st_)


def test_lookup_by_id_prefix_and_name(tmp_path: Path) -> None:
    s = StateStore(MemoryBackend())
    s.add(_container("ab" + "0" * 62, "first"))
    s.add(_container("ac" + "0" * 62, "second"))
    assert s.get("first").name == "first"
    assert s.get("/second").name == "second"
    assert s.get("ab").name == "first"
    with pytest.raises(InvalidArgument, match="multiple"):
        s.get("a")
    with pytest.raises(NoSuchContainer, match="No such container: zz"):
        s.get("zz")
    with pytest.raises(NameInUse):
        s.add(_container("ad" + "0" * 62, "first"))
    s.close()


def test_status_text() -> None:
    now = time.time()
    running = _container("a" * 64, "r", Status="running", Running=True,
                         StartedAt=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3)),
                         Health={"Status": "healthy"})
    assert query.status_text(running, now).startswith("Up ")
    assert query.status_text(running, now).endswith("(healthy)")
    exited = _container("b" * 64, "e", Status="exited", ExitCode=3,
                        FinishedAt=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 120)))
    assert query.status_text(exited, now) == "Exited (3) 2 minutes ago"
    assert query.status_text(_container("c" * 64, "c"), now) == "Created"


def test_filters() -> None:
    c = _container("abc" + "0" * 61, "web-1", Status="exited", ExitCode=0,
                   FinishedAt="2024-01-01T00:00:01Z")
    assert query.matches(c, {"status": ["exited", "created"]})
    assert not query.matches(c, {"status": ["running"]})
    assert query.matches(c, {"name": ["web"]}) and query.matches(c, {"id": ["abc"]})
    assert query.matches(c, {"label": ["tier"]}) and query.matches(c, {"label": ["tier=web"]})
    assert not query.matches(c, {"label": ["tier=db"]})
    assert query.matches(c, {"exited": ["0"]}) and query.matches(c, {"ancestor": ["busybox"]})
    assert query.normalise_filters('{"status": {"exited": true}}') == {"status": ["exited"]}


def test_human_duration() -> None:
    assert query.human_duration(0.5) == "Less than a second"
    assert query.human_duration(45) == "45 seconds"
    assert query.human_duration(90) == "About a minute"
    assert query.human_duration(3 * 3600) == "3 hours"


@given(st.sampled_from([1, 2]), st.binary(max_size=300))
def test_frame_header(stream: int, data: bytes) -> None:
    f = frame(stream, data)
    assert f[0] == stream and f[1:4] == b"\0\0\0"
    assert int.from_bytes(f[4:8], "big") == len(data) and f[8:] == data


def test_safe_join_stays_inside(tmp_path: Path) -> None:
    base = tmp_path / "layer"
    (base / "etc").mkdir(parents=True)
    (base / "etc" / "passwd").write_text("inside")
    os.symlink("/etc", base / "abs")
    os.symlink("../../../../etc", base / "rel")
    assert safe_join(base, "abs/passwd") == base / "etc" / "passwd"
    assert safe_join(base, "rel/passwd") == base / "etc" / "passwd"
    assert safe_join(base, "../../etc/passwd") == base / "etc" / "passwd"
    assert safe_join(base, "missing/x") is None


def test_copy_up_applies_layers_and_whiteouts(tmp_path: Path) -> None:
    lower, upper, dest = tmp_path / "l", tmp_path / "u", tmp_path / "d"
    (lower / "data").mkdir(parents=True)
    (lower / "data" / "a").write_text("lower a")
    (lower / "data" / "gone").write_text("x")
    (upper / "data").mkdir(parents=True)
    (upper / "data" / "a").write_text("upper a")
    os.mknod(upper / "data" / "gone", 0o600 | 0o020000, os.makedev(0, 0))
    os.symlink("/etc", upper / "escape")
    dest.mkdir()
    copy_up([upper, lower], "/data", dest)
    assert (dest / "a").read_text() == "upper a" and not (dest / "gone").exists()
    dest2 = tmp_path / "d2"
    dest2.mkdir()
    copy_up([upper, lower], "/escape", dest2)  # a symlink to a host dir: nothing copied
    assert list(dest2.iterdir()) == []


def test_format_templates() -> None:
    from portside.cli.output import render

    doc = {"State": {"Status": "running", "Running": True, "ExitCode": 0},
           "Config": {"Labels": {"a": "b"}}, "Names": "web"}
    assert render("{{.State.Status}} {{.State.Running}} {{.State.ExitCode}}", doc) == \
        "running true 0"
    assert render("{{json .Config.Labels}}", doc) == '{"a": "b"}'
    assert render("{{.Names}}\\t{{.Missing}}", doc) == "web\t<no value>"
