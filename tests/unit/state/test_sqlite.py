"""What only the SQLite backend promises: one WAL file that several processes share."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from portside.state import Compare, EventType, Put, SqliteBackend

INCREMENT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from portside.state import Compare, Put, SqliteBackend

    b = SqliteBackend(Path(sys.argv[1]))
    done = 0
    while done < int(sys.argv[2]):
        kv = b.get("n")
        value = str(int(kv.value) + 1).encode()
        if b.txn([Compare.mod_revision_is("n", kv.mod_revision)], [Put("n", value)]).succeeded:
            done += 1
    b.close()
""")


def test_processes_share_one_file_without_losing_writes(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    b = SqliteBackend(path)
    b.put("n", b"0")
    w = b.watch("n")
    procs = [subprocess.Popen([sys.executable, "-c", INCREMENT, str(path), "30"])
             for _ in range(3)]
    done = 0
    while done < 30:
        kv = b.get("n")
        assert kv is not None
        if b.txn([Compare.mod_revision_is("n", kv.mod_revision)],
                 [Put("n", str(int(kv.value) + 1).encode())]).succeeded:
            done += 1
    for p in procs:
        assert p.wait(timeout=120) == 0
    kv = b.get("n")
    assert kv is not None and kv.value == b"120"
    values = [int(e.kv.value) for e in w.events(idle_timeout=1)]
    assert values == list(range(1, 121))  # every process's write, in order, once
    b.close()


def test_the_file_is_wal_with_its_history(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    b = SqliteBackend(path)
    b.put("a", b"1")
    b.delete("a")
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    rows = conn.execute("SELECT revision, type, key FROM history ORDER BY revision").fetchall()
    assert rows == [(1, EventType.PUT.value, b"a"), (2, EventType.DELETE.value, b"a")]
    conn.close()
    b.close()
