"""`portside image lint`: rules over layers (a secret deleted later is still found, in the
layer that holds it), over the config, and over a Dockerfile with its line numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from portside.store.images import ImageStore
from portside.trust.lint.dockerfile import lint_dockerfile
from portside.trust.lint.image import lint_image

sys.path.insert(0, str(Path(__file__).parents[2]))
from helpers.imagefactory import add_image  # noqa: E402

PORTSIDE = str(Path(sys.executable).with_name("portside"))
KEY = (b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"
       b"-----END OPENSSH PRIVATE KEY-----\n")


def whiteout(path: str) -> tarfile.TarInfo:
    folder, _, name = path.rpartition("/")
    info = tarfile.TarInfo(f"{folder}/.wh.{name}")
    return info


def leaky(store: ImageStore) -> list[str]:
    gone = whiteout("root/.ssh/id_ed25519")
    built = add_image(store, [
        {"root/.ssh/id_ed25519": KEY, "etc/hosts": b"127.0.0.1 localhost\n10.1.2.3 db.corp\n",
         "var/cache/apt/archives/curl_7.88.deb": bytes(5000), "usr/bin/gcc-12": bytes(3000)},
        {gone.name: gone, "app/.env": b"DB_PASSWORD=hunter2\n",
         "app/settings.py": b"KEY = 'AKIAIOSFODNN7EXAMPLE'\n"},
    ], tags=("sn-leaky:1",), config={"Cmd": ["sh"], "Env": ["DB_HOST=192.168.7.20", "PATH=/bin"],
                                     "ExposedPorts": {"8080/tcp": {}}})
    return [d.digest for d in store.manifest(built.image).layers]


def test_image_rules(store: ImageStore) -> None:
    layers = leaky(store)
    found = lint_image(store, store.get("sn-leaky:1"), max_layers=1, expect_ports=("80",))
    by_rule = {(f.rule, f.where.split(" (")[0]): f.message for f in found}
    assert "/root/.ssh/id_ed25519" in by_rule[("PS100", "layer 1")]  # deleted in layer 2
    assert by_rule[("PS101", "layer 2")] == "/app/.env"
    assert "AWS access key" in by_rule[("PS102", "layer 2")]
    assert "5.0kB" in by_rule[("PS200", "layer 1")]
    assert "/usr/bin/gcc-12" in by_rule[("PS201", "layer 1")]
    assert "10.1.2.3" in by_rule[("PS303", "layer 1")]
    assert "192.168.7.20" in by_rule[("PS303", "config")]
    assert ("PS300", "config") in by_rule and ("PS301", "config") in by_rule
    assert {f.message for f in found if f.rule == "PS302"} == {
        "port 80/tcp is not exposed", "port 8080/tcp is exposed, not expected"}
    assert all(layers[0][:19] in f.where for f in found if f.where.startswith("layer 1"))
    assert next(f for f in found if f.rule == "PS100").severity == "critical"


def test_dockerfile_rules() -> None:
    text = ("FROM debian AS build\n"
            "RUN apt-get update && \\\n    apt-get install -y gcc\n"
            "FROM build\n"
            "FROM busybox:latest\n"
            "FROM busybox@sha256:" + "a" * 64 + "\n"
            "ADD app.py /app/\n"
            "ADD rootfs.tar.gz /\n"
            'ADD ["https://example.com/x", "/x"]\n'
            "RUN pip install flask\n"
            "RUN apt-get install -y curl && rm -rf /var/lib/apt/lists/*\n")
    found = [(f.rule, f.where) for f in lint_dockerfile(text)]
    assert found == [("PS400", "Dockerfile:1"), ("PS402", "Dockerfile:2"),
                     ("PS401", "Dockerfile:5"), ("PS403", "Dockerfile:7"),
                     ("PS404", "Dockerfile:10")]


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PORTSIDE, *args], env={**os.environ, "PORTSIDE_ROOT": str(root)},
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)


def test_lint_command_thresholds_and_bad_input(root: Path, store: ImageStore,
                                              tmp_path: Path) -> None:
    leaky(store)
    r = cli(root, "image", "lint", "sn-leaky:1", "--format", "json")
    assert r.returncode == 1  # a secret is critical, above the default `high`
    assert {f["rule"] for f in json.loads(r.stdout)} >= {"PS100", "PS101", "PS102"}
    r = cli(root, "image", "lint", "sn-leaky:1", "--ignore", "PS100", "--ignore", "ps101",
            "--ignore", "PS102")
    assert r.returncode == 0 and "PS200" in r.stdout and "PS100" not in r.stdout
    assert cli(root, "image", "lint", "sn-leaky:1", "--ignore", "PS100", "--ignore", "PS101",
               "--ignore", "PS102", "--fail-on", "low").returncode == 1
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM busybox:1.36\nCOPY . /app\n")
    r = cli(root, "image", "lint", "-f", str(dockerfile))
    assert (r.returncode, r.stdout.strip()) == (0, "no findings")
    for args, words in [(("sn-leaky:1", "--ignore", "PS999"), "unknown lint rule 'PS999'"),
                        (("sn-leaky:1", "--fail-on", "urgent"), "unknown severity"),
                        (("nope:1",), "nope"),
                        (("-f", str(tmp_path / "missing")), "missing"),
                        ((), "give an IMAGE")]:
        r = cli(root, "image", "lint", *args)
        assert r.returncode != 0 and words in r.stderr, (args, r.stderr)
        assert r.stderr.count("\n") <= 1 or "Usage" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr


@pytest.mark.parametrize("text", ["FROM\n", "FROM $BASE\n", "ADD\n", "RUN\n"])
def test_dockerfile_odd_lines_do_not_crash(text: str) -> None:
    lint_dockerfile(text)
