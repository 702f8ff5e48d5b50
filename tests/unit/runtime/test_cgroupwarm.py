"""The cgroup-migration warm-up around create: a no-op move of ourselves, and gone after."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from portside.runtime import cgroups
from portside.runtime.cgroupwarm import migrations_kept_fast, own_procs_file


def test_own_procs_file_is_the_cgroup_we_are_in() -> None:
    layout = cgroups.detect()
    path = own_procs_file(layout)
    if not layout.v1:
        assert path is None
        return
    assert path is not None
    assert str(os.getpid()) in Path(path).read_text().split()


def test_no_v1_hierarchy_means_no_warm_up() -> None:
    assert own_procs_file(cgroups.Layout(v1={}, v2="/sys/fs/cgroup")) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="writes cgroup.procs")
def test_block_leaves_our_cgroups_as_they_were_and_no_thread_behind() -> None:
    before = Path("/proc/self/cgroup").read_text()
    with migrations_kept_fast(cgroups.detect()):
        assert Path("/proc/self/cgroup").read_text() == before
    assert Path("/proc/self/cgroup").read_text() == before
    assert not [t for t in threading.enumerate() if t.name == "cgroup-warm"]


def test_an_error_in_the_block_still_stops_the_thread() -> None:
    with pytest.raises(RuntimeError), migrations_kept_fast(cgroups.detect()):
        raise RuntimeError("create failed")
    assert not [t for t in threading.enumerate() if t.name == "cgroup-warm"]
