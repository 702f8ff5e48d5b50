"""Named network namespaces made in-process: pinned, loopback up, nothing else moved."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from portside.network.netns import NetnsError, create_netns, delete_netns, list_netns


@pytest.fixture
def netns_dir(tmp_path: Path):
    d = tmp_path / "netns"
    yield d
    for name in list_netns(d):
        delete_netns(d / name)
    subprocess.run(["umount", str(d)], capture_output=True)


def test_a_new_namespace_has_loopback_up_and_the_process_stays_where_it_was(netns_dir):
    before = os.readlink("/proc/self/ns/net")
    path = create_netns("ps-nstest", netns_dir)
    links = subprocess.run(["nsenter", f"--net={path}", "ip", "-o", "link"],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(links) == 1 and "lo:" in links[0] and ",UP" in links[0]
    addr = subprocess.run(["nsenter", f"--net={path}", "ip", "-o", "addr", "show", "lo"],
                          capture_output=True, text=True, check=True).stdout
    assert "127.0.0.1/8" in addr
    assert os.readlink("/proc/self/ns/net") == before
    assert list_netns(netns_dir) == ["ps-nstest"]
    delete_netns(path)
    assert list_netns(netns_dir) == [] and not path.exists()


def test_two_namespaces_are_distinct_and_a_name_in_use_is_refused(netns_dir):
    a = create_netns("ps-nsa", netns_dir)
    b = create_netns("ps-nsb", netns_dir)
    assert os.stat(a).st_ino != os.stat(b).st_ino  # each file pins its own namespace
    with pytest.raises(NetnsError, match="already exists"):
        create_netns("ps-nsa", netns_dir)
