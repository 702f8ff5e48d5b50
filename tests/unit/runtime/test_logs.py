"""The k8s-file log reader: partial lines, streams, since/until/tail, rotation, follow."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from portside.runtime.logs import keep_generation, parse_record, parse_timestamp, read_logs


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
    log.write_bytes(rec(T0, "stdout", b"one"))
    keep_generation(log, 3)
    keep_generation(log, 3)  # idempotent while the file is the same
    # conmon's rotation: a new file renamed over the old name
    new = tmp_path / "ctr.log.tmp"
    new.write_bytes(rec(T0 + 1, "stdout", b"two"))
    os.replace(new, log)
    keep_generation(log, 3)
    new.write_bytes(rec(T0 + 2, "stdout", b"three"))
    os.replace(new, log)
    assert [e.data for e in read_logs(log)] == [b"one\n", b"two\n", b"three\n"]
    keep_generation(log, 3)
    new.write_bytes(rec(T0 + 3, "stdout", b"four"))
    os.replace(new, log)
    keep_generation(log, 3)
    # max-file 3: the current file plus two older ones
    assert [e.data for e in read_logs(log)] == [b"two\n", b"three\n", b"four\n"]


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
