"""`portside image test`: container-structure-test files against busybox, commands in real
containers through the daemon; unknown keys reported with their line."""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

import pytest

from portside.errors import InvalidArgument
from portside.store.images import ImageStore
from portside.trust.structure.spec import load
from portside.trust.structure.tree import Tree

sys.path.insert(0, str(Path(__file__).parents[2]))
from helpers.busybox import busybox_image  # noqa: E402
from helpers.daemon import PortsideDaemon  # noqa: E402
from helpers.imagefactory import add_image  # noqa: E402

TESTS = """\
schemaVersion: '2.0.0'
globalEnvVars:
  - key: GREETING
    value: hello
commandTests:
  - name: busybox says its name
    command: busybox
    args: ["--help"]
    expectedOutput: ["BusyBox v1\\\\.\\\\d+"]
  - name: env reaches the command, stderr and exit code are seen
    command: sh
    args: ["-c", "echo $GREETING >&2; exit 3"]
    expectedError: ["^hello$"]
    exitCode: 3
fileExistenceTests:
  - name: sh
    path: /bin/sh
    shouldExist: true
    isExecutableBy: any
  - name: no ssh keys
    path: /root/.ssh
    shouldExist: false
fileContentTests:
  - name: passwd has root
    path: /etc/passwd
    expectedContents: ["^root:x:0:0:"]
metadataTest:
  cmd: ["sh"]
"""


def test_structure_tests_pass_and_fail(daemon: PortsideDaemon, tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(TESTS)
    r = daemon.cli("image", "test", "busybox", "-c", str(good), "--format", "json")
    results = json.loads(r.stdout)
    assert len(results) == 6 and all(x["passed"] for x in results), results
    bad = tmp_path / "bad.yaml"
    bad.write_text(TESTS.replace("exitCode: 3", "exitCode: 0")
                   .replace('cmd: ["sh"]', 'cmd: ["bash"]'))
    r = daemon.cli("image", "test", "busybox", "-c", str(bad), check=False)
    assert r.returncode == 1
    assert "FAIL  command: env reaches the command" in r.stdout and "exit code 3" in r.stdout
    assert "FAIL  metadata" in r.stdout and "4 passed, 2 failed" in r.stdout
    assert daemon.cli("ps", "-aq").stdout.strip() == ""  # the test containers are gone


def test_unknown_keys_are_reported_with_their_line(tmp_path: Path) -> None:
    text = TESTS.replace("    shouldExist: false", "    shouldExists: false")
    with pytest.raises(InvalidArgument, match=r"t.yaml:22: unknown key 'shouldExists' in "
                                              r"fileExistenceTests\[1\]"):
        load(text, "t.yaml")
    with pytest.raises(InvalidArgument, match="t.yaml:1: unknown key 'commandTest'"):
        load("commandTest: []\n", "t.yaml")
    with pytest.raises(InvalidArgument, match="schemaVersion"):
        load("schemaVersion: '1.0.0'\n", "t.yaml")
    with pytest.raises(InvalidArgument, match="t.yaml:2: not YAML"):
        load("a: [\nb", "t.yaml")


def test_tree_follows_symlinks_and_whiteouts(store: ImageStore) -> None:
    link = tarfile.TarInfo("bin")
    link.type, link.linkname = tarfile.SYMTYPE, "usr/bin"
    gone = tarfile.TarInfo("usr/bin/.wh.old")
    built = add_image(store, [{"usr/bin/tool": b"#!/bin/sh\n", "usr/bin/old": b"x", "bin": link},
                              {gone.name: gone}])
    tree = Tree(store, built.image)
    assert tree.read("/bin/tool") == b"#!/bin/sh\n"
    assert tree.get("/bin/old") is None
    assert tree.get("/usr/bin/tool") is not None
    assert tree.get("/usr").kind == "dir"  # type: ignore[union-attr]  # implied by its files


def test_image_test_cli_bad_input(root: Path, store: ImageStore, tmp_path: Path) -> None:
    import os
    import subprocess

    busybox_image(store)
    portside = str(Path(sys.executable).with_name("portside"))
    env = {**os.environ, "PORTSIDE_ROOT": str(root)}
    bad = tmp_path / "bad.yaml"
    bad.write_text("schemaVersion: '2.0.0'\nmetadataTest:\n  cmdd: []\n")
    for args, words in [(("busybox", "-c", str(bad)), "bad.yaml:3: unknown key 'cmdd'"),
                        (("busybox", "-c", str(tmp_path / "none.yaml")), "none.yaml"),
                        (("nope:1", "-c", str(bad)), "bad.yaml:3")]:
        r = subprocess.run([portside, "image", "test", *args], env=env, capture_output=True,
                           text=True, stdin=subprocess.DEVNULL)
        assert r.returncode != 0 and words in r.stderr, r.stderr
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
