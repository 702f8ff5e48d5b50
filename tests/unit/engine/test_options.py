"""Parsers of Docker's flag syntaxes (property tests where the input space is open)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portside.engine import options as opt
from portside.errors import InvalidArgument


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["", "b", "k", "m", "g"]))
def test_parse_bytes_units(n: int, unit: str) -> None:
    scale = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit]
    assert opt.parse_bytes(f"{n}{unit}") == n * scale
    assert opt.parse_bytes(f"{n}{unit.upper()}") == n * scale


@given(st.text())
def test_parse_bytes_never_crashes(text: str) -> None:
    try:
        assert opt.parse_bytes(text) >= 0
    except InvalidArgument as exc:
        assert "invalid size" in str(exc)


def test_memory_swap_unlimited() -> None:
    assert opt.parse_memory_swap("-1") == -1
    assert opt.parse_memory_swap("128m") == 128 * 1024**2


@given(st.decimals(min_value=0, max_value=64, places=3, allow_nan=False))
def test_parse_cpus(value: object) -> None:
    assert opt.parse_cpus(str(value)) == round(float(str(value)) * 1e9)


@pytest.mark.parametrize("bad", ["x", "-1", "nan", "inf", ""])
def test_parse_cpus_rejects(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        opt.parse_cpus(bad)


@pytest.mark.parametrize(("text", "ns"), [("2s", 2 * 10**9), ("1m30s", 90 * 10**9),
                                          ("500ms", 5 * 10**8), ("0", 0), ("1.5h", 5400 * 10**9)])
def test_parse_duration(text: str, ns: int) -> None:
    assert opt.parse_duration(text) == ns


@given(st.text())
def test_parse_duration_never_crashes(text: str) -> None:
    with contextlib.suppress(InvalidArgument):
        opt.parse_duration(text)


@given(st.from_regex(r"[A-Z_][A-Z0-9_]{0,10}", fullmatch=True), st.text(max_size=20))
def test_parse_env(key: str, value: str) -> None:
    assert opt.parse_env([f"{key}={value}"]) == [f"{key}={value}"]
    assert opt.parse_env([key], {key: value}) == [f"{key}={value}"]
    assert opt.parse_env([key], {}) == []


def test_env_file_skips_comments_and_blanks() -> None:
    assert opt.parse_env_file("# c\n\nA=1\nB\n", {"B": "2"}) == ["A=1", "B=2"]


@pytest.mark.parametrize(("text", "name", "count"), [
    ("no", "no", 0), ("always", "always", 0), ("unless-stopped", "unless-stopped", 0),
    ("on-failure", "on-failure", 0), ("on-failure:3", "on-failure", 3)])
def test_parse_restart(text: str, name: str, count: int) -> None:
    p = opt.parse_restart(text)
    assert (p.name, p.maximum_retry_count) == (name, count)


@given(st.text())
def test_parse_restart_rejects_anything_else(text: str) -> None:
    valid = {"", "no", "always", "unless-stopped", "on-failure"}
    try:
        p = opt.parse_restart(text)
    except InvalidArgument:
        return
    assert text in valid or (text.startswith("on-failure:") and p.maximum_retry_count >= 0)


def test_parse_volume_forms() -> None:
    anon = opt.parse_volume("/data")
    assert (anon.type, anon.source, anon.target) == ("volume", "", "/data")
    named = opt.parse_volume("data:/data:ro")
    assert (named.type, named.source, named.read_only) == ("volume", "data", True)
    bind = opt.parse_volume("/host/dir:/ctr:rw")
    assert (bind.type, bind.create_source, bind.read_only) == ("bind", True, False)
    for bad in ("rel/path:/x", "data:relative", "a:/b:bogus", "a:/b:c:d", ":/x"):
        with pytest.raises(InvalidArgument):
            opt.parse_volume(bad)


@given(st.text(alphabet="abc:/,=.-_ 1", max_size=30))
def test_parse_volume_and_mount_never_crash(text: str) -> None:
    for parse in (opt.parse_volume, opt.parse_mount):
        try:
            m = parse(text)
        except InvalidArgument:
            continue
        assert m.target.startswith("/")


def test_parse_mount_forms() -> None:
    m = opt.parse_mount("type=bind,source=/a,target=/b,readonly")
    assert (m.type, m.source, m.target, m.read_only, m.create_source) == (
        "bind", "/a", "/b", True, False)
    v = opt.parse_mount("type=volume,src=v,dst=/v,volume-nocopy")
    assert (v.type, v.source, v.nocopy) == ("volume", "v", True)
    t = opt.parse_mount("type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1777")
    assert (t.tmpfs_size, t.tmpfs_mode) == (64 * 1024**2, 0o1777)
    assert t.to_api() == {"Type": "tmpfs", "Target": "/t",
                          "TmpfsOptions": {"SizeBytes": 64 * 1024**2, "Mode": 0o1777}}
    for bad in ("type=bind,target=/b", "type=nfs,target=/x", "source=a", "type=tmpfs,src=x,dst=/y",
                "type=volume,target=/x,colour=blue"):
        with pytest.raises(InvalidArgument):
            opt.parse_mount(bad)


def test_parse_signal() -> None:
    assert opt.parse_signal("HUP") == 1
    assert opt.parse_signal("SIGKILL") == 9
    assert opt.parse_signal("15") == 15
    with pytest.raises(InvalidArgument):
        opt.parse_signal("SIGNOPE")


def test_log_opts_and_filters() -> None:
    assert opt.parse_log_opts(["max-size=10m", "max-file=3"]) == {"max-size": "10m",
                                                                  "max-file": "3"}
    with pytest.raises(InvalidArgument):
        opt.parse_log_opts(["max-file=0"])
    assert opt.parse_filters(["status=exited", "label=a=b", "status=created"]) == {
        "status": ["exited", "created"], "label": ["a=b"]}


def test_time_or_duration() -> None:
    assert opt.parse_time_or_duration("10m", 1000.0) == 400.0
    assert opt.parse_time_or_duration("1700000000", 0) == 1700000000.0
    assert opt.parse_time_or_duration("2024-01-01T00:00:00Z", 0) == 1704067200.0
