"""The k8s-file log reader: partial lines, streams, since/until/tail, rotation, follow."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from portside.runtime.logkeeper import rotate
from portside.runtime.logs import parse_record, parse_timestamp, read_logs


def rec(ns: int, stream: str, data: bytes, full: bool = True) -> bytes:
    secs, frac = divmod(ns, 1_000_000_000)
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}+00:00"
    return f"{ts} {stream} {'F' if full else 'P'} ".encode() + data + b"\n"


T0 = 1_700_000_000 * 1_000_000_000


def test_timestamps_with_offsets() -> None:
    assert parse_timestamp(b"2023-11-14T22:13:20.5Z") == T0 + 500_000_000
    assert parse_timestamp(b"2023-11-15T00:13:20.000000001+02:00") == T0 + 1
    assert parse_timestamp(b"2023-11-14T22:13:20Z") == T0


def test_reads_lines_and_joins_partials(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    log.write_bytes(rec(T0, "stdout", b"hel", full=False) + rec(T0 + 1, "stderr", b"err")
                    + rec(T0 + 2, "stdout", b"lo") + rec(T0 + 3, "stdout", b"") + b"garbage\n")
    entries = list(read_logs(log))
    assert [(e.stream, e.data) for e in entries] == [
        ("stderr", b"err\n"), ("stdout", b"hello\n"), ("stdout", b"\n")]
    assert entries[1].time_ns == T0
    assert entries[1].timestamp == "2023-11-14T22:13:20.000000000Z"


def test_since_until_tail(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    log.write_bytes(b"".join(rec(T0 + i * 1_000_000_000, "stdout", str(i).encode())
                             for i in range(10)))
    got = [e.data for e in read_logs(log, since=T0 / 1e9 + 3, until=T0 / 1e9 + 6)]
    assert got == [b"3\n", b"4\n", b"5\n"]
    assert [e.data for e in read_logs(log, tail=2)] == [b"8\n", b"9\n"]
    assert list(read_logs(log, tail=0)) == []


def test_missing_file_is_empty(tmp_path: Path) -> None:
    assert list(read_logs(tmp_path / "none.log")) == []


def test_rotated_generations_read_oldest_first(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"

    def generation(ns: int, text: bytes) -> None:
        rotate(log, 3)  # the keeper's step; then conmon reopens: a new file at the name
        log.write_bytes(rec(ns, "stdout", text))

    log.write_bytes(rec(T0, "stdout", b"one"))
    generation(T0 + 1, b"two")
    generation(T0 + 2, b"three")
    assert [e.data for e in read_logs(log)] == [b"one\n", b"two\n", b"three\n"]
    generation(T0 + 3, b"four")
    # max-file 3: the current file plus two older ones
    assert [e.data for e in read_logs(log)] == [b"two\n", b"three\n", b"four\n"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ctr.log", "ctr.log.1", "ctr.log.2"]


def test_follow_until_stopped(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    log.write_bytes(rec(T0, "stdout", b"first"))
    done = threading.Event()

    def writer() -> None:
        time.sleep(0.2)
        with open(log, "ab") as f:
            f.write(rec(T0 + 1, "stdout", b"second"))
        time.sleep(0.2)
        new = tmp_path / "tmp"
        new.write_bytes(rec(T0 + 2, "stderr", b"third"))
        os.replace(new, log)  # rotation while following
        time.sleep(0.3)
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    got = [e.data for e in read_logs(log, follow=True, stop=done.is_set, poll_interval=0.02)]
    t.join()
    assert got == [b"first\n", b"second\n", b"third\n"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_parse_record_never_crashes(line: bytes) -> None:
    parse_record(line)


@settings(max_examples=100, deadline=None)
@given(chunks=st.lists(st.tuples(st.sampled_from(["stdout", "stderr"]),
                                 st.binary(max_size=20).filter(lambda b: b"\n" not in b),
                                 st.booleans()), max_size=20))
def test_partials_reassemble(tmp_path_factory: object, chunks: list[tuple[str, bytes, bool]]
                             ) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        log = Path(d) / "ctr.log"
        log.write_bytes(b"".join(rec(T0 + i, s, b, f) for i, (s, b, f) in enumerate(chunks)))
        out = list(read_logs(log))
        for stream in ("stdout", "stderr"):
            want = b"".join(b + (b"\n" if f else b"") for s, b, f in chunks if s == stream)
            assert b"".join(e.data for e in out if e.stream == stream) == want


def test_a_burst_past_max_size_is_cut_into_generations(tmp_path: Path) -> None:
    from portside.runtime.logkeeper import split

    log = tmp_path / "ctr.log"
    lines = [rec(T0 + i, "stdout", b"%04d" % i) for i in range(200)]
    per_line = len(lines[0])
    Path(f"{log}.2").write_bytes(b"older")
    Path(f"{log}.1").write_bytes(b"".join(lines))  # finished, far past max-size
    log.write_bytes(rec(T0 + 500, "stdout", b"live"))
    split(log, 1, 10 * per_line, 3)
    # .1 and .2 hold the newest 20 lines of the burst; "older" and the rest are gone
    assert [e.data for e in read_logs(log)] == [b"%04d\n" % i for i in range(180, 200)] + [
        b"live\n"]
    assert all(p.stat().st_size <= 10 * per_line for p in tmp_path.iterdir())


def test_a_small_overshoot_stays_one_generation(tmp_path: Path) -> None:
    from portside.runtime.logkeeper import split

    log = tmp_path / "ctr.log"
    Path(f"{log}.2").write_bytes(rec(T0, "stdout", b"old"))
    Path(f"{log}.1").write_bytes(rec(T0 + 1, "stdout", b"x" * 100))
    log.write_bytes(b"")
    split(log, 1, 100, 3)
    assert [len(e.data) for e in read_logs(log)] == [4, 101]
