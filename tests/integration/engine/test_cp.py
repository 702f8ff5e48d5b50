"""`docker cp` and `portside cp` against the daemon: both directions, running and stopped
containers, tar streams, and paths that try to leave the container's filesystem."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from helpers.daemon import PortsideDaemon


def test_docker_cp_out_of_and_into_a_running_container(daemon: PortsideDaemon,
                                                      tmp_path: Path) -> None:
    daemon.cli("run", "-d", "--name", "web", "--hostname", "webhost", "busybox",
               "sleep", "300")
    r = daemon.docker("cp", "web:/etc/hostname", str(tmp_path))
    assert (tmp_path / "hostname").read_text() == "webhost\n", r.stderr
    conf = tmp_path / "conf"
    (conf / "sub").mkdir(parents=True)
    (conf / "app.ini").write_text("x=1\n")
    (conf / "sub" / "deep.txt").write_text("deep\n")
    daemon.docker("cp", str(conf), "web:/conf")
    out = daemon.cli("exec", "web", "sh", "-c", "cat /conf/app.ini /conf/sub/deep.txt;"
                     " stat -c %u:%g /conf/app.ini").stdout
    assert out == "x=1\ndeep\n0:0\n"
