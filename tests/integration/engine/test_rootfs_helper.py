"""The stopped-container mount helper: an overlay (even of a long layer list) and binds in
a private mount namespace, reachable through /proc/<pid>/root, gone with the helper."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from portside.runtime.mounts import mounts_under


def test_helper_mounts_layers_and_binds_privately(tmp_path: Path) -> None:
    lowers = []
    for i in range(60):  # `lowerdir=` of these paths is longer than a page: the farm path
        low = tmp_path / ("layer-" + "x" * 60 + f"-{i:02d}")
        low.mkdir()
        (low / f"f{i}").write_text(str(i))
        lowers.append(str(low))
    upper, work, target = tmp_path / "diff", tmp_path / "work", tmp_path / "root"
    for p in (upper, work, target):
        p.mkdir()
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "v.txt").write_text("volume\n")
    spec = {"target": str(target), "farm": str(tmp_path / "farm"), "bind_root": "",
            "lowers": lowers, "upper": str(upper), "work": str(work),
            "binds": [{"source": str(vol), "target": "/data", "read_only": True}]}
    proc = subprocess.Popen([sys.executable, "-m", "portside.engine.rootfs_helper"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(spec).encode() + b"\n")
    proc.stdin.flush()
    try:
        assert proc.stdout.readline() == b"ready\n"
        seen = Path(f"/proc/{proc.pid}/root{target}")
        assert (seen / "f0").read_text() == "0" and (seen / "f59").read_text() == "59"
        assert (seen / "data" / "v.txt").read_text() == "volume\n"
        (seen / "new.txt").write_text("rw layer\n")
        assert mounts_under(target) == []  # nothing of it on the host
    finally:
        proc.stdin.close()
        proc.wait(30)
    assert (upper / "new.txt").read_text() == "rw layer\n"  # writes went to the upper dir
    assert not any(os.path.exists(os.path.join(low, "new.txt")) for low in lowers)
