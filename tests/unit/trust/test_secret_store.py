"""The secret store on an in-memory backend: Docker's rules for names, sizes, labels and
versions; values sealed at rest (never in a record, an error or the backend in clear)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portside.engine.secretfiles import normalise, parse_secret
from portside.errors import Conflict, InvalidArgument, NotFound, PortsideError
from portside.state.memory import MemoryBackend
from portside.state.sqlite import SqliteBackend
from portside.trust.secrets.keyring import Keyring, SealBroken
from portside.trust.secrets.store import CONFIG, SECRET, SecretStore
from portside.trust.secrets.vault import VaultDriver

VALUE = b"hunter2-do-not-leak"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def store(tmp_path: Path) -> SecretStore:
    return SecretStore(MemoryBackend(), Keyring(tmp_path / "secrets.key"), SECRET,
                       {"vault": VaultDriver("", "")})


def test_create_inspect_list_remove(store: SecretStore, tmp_path: Path) -> None:
    sid = store.create({"Name": "db_password", "Labels": {"team": "a"}, "Data": _b64(VALUE)})
    doc = store.inspect("db_password")
    assert doc["ID"] == sid and doc["Spec"] == {"Name": "db_password", "Labels": {"team": "a"}}
    assert "Data" not in doc["Spec"] and doc["Version"]["Index"] > 0
    assert store.inspect(sid[:6])["ID"] == sid
    assert store.value("db_password") == VALUE
    key = tmp_path / "secrets.key"
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == 32
    for kv in store.backend.range("")[0]:  # sealed at rest: the value is nowhere in clear
        assert VALUE not in kv.value and _b64(VALUE).encode() not in kv.value
    store.create({"Name": "other", "Data": _b64(b"x")})
    assert [d["Spec"]["Name"] for d in store.list()] == ["db_password", "other"]
    assert [d["Spec"]["Name"] for d in store.list({"label": ["team=a"]})] == ["db_password"]
    assert [d["Spec"]["Name"] for d in store.list({"name": ["oth"]})] == ["other"]
    assert [d["Spec"]["Name"] for d in store.list({"id": [sid[:5]]})] == ["db_password"]
    store.remove("db_password")
    with pytest.raises(NotFound, match="secret 'db_password' not found"):
        store.inspect("db_password")
    assert store.backend.range("secrets/values/")[0][0].key.endswith(store.lookup("other")[0])


def test_bad_input_is_one_line_without_the_value(store: SecretStore) -> None:
    store.create({"Name": "pw", "Data": _b64(VALUE)})
    with pytest.raises(Conflict, match="secret 'pw' already exists"):
        store.create({"Name": "pw", "Data": _b64(VALUE)})
    with pytest.raises(InvalidArgument, match="at most 500 KB"):
        store.create({"Name": "big", "Data": _b64(b"x" * (500 * 1024 + 1))})
    store.create({"Name": "exactly", "Data": _b64(b"x" * 500 * 1024)})
    for bad in ("-x", "a b", "x" * 65, "", "x."):
        with pytest.raises(InvalidArgument, match="invalid secret name"):
            store.create({"Name": bad, "Data": _b64(VALUE)})
    with pytest.raises(InvalidArgument, match="not valid base64"):
        store.create({"Name": "b", "Data": "%%%"})
    with pytest.raises(InvalidArgument, match="larger than 0"):
        store.create({"Name": "e", "Data": ""})
    with pytest.raises(InvalidArgument, match="Options an object"):
        store.create({"Name": "d", "Driver": {"Name": "vault", "Options": [1]}})
    with pytest.raises(InvalidArgument, match="driver 'nope' is not available"):
        store.create({"Name": "d", "Driver": {"Name": "nope"}})
    with pytest.raises(InvalidArgument, match="MOUNT/PATH#FIELD"):
        store.create({"Name": "v", "Driver": {"Name": "vault", "Options": {"path": "x"}}})
    assert [d["Spec"]["Name"] for d in store.list()] == ["exactly", "pw"]  # nothing half-made


def test_update_labels_with_the_version(store: SecretStore) -> None:
    store.create({"Name": "pw", "Data": _b64(VALUE)})
    doc = store.inspect("pw")
    store.update("pw", doc["Version"]["Index"], {"Name": "pw", "Labels": {"k": "v"}})
    after = store.inspect("pw")
    assert after["Spec"]["Labels"] == {"k": "v"}
    assert after["Version"]["Index"] > doc["Version"]["Index"]
    with pytest.raises(Conflict, match="out of sequence"):
        store.update("pw", doc["Version"]["Index"], {"Name": "pw", "Labels": {}})
    with pytest.raises(InvalidArgument, match="only updates to Labels"):
        store.update("pw", after["Version"]["Index"], {"Name": "pw2"})


def test_vault_secret_keeps_only_its_reference(store: SecretStore) -> None:
    store.create({"Name": "api_key", "Driver": {"Name": "vault", "Options": {
        "path": "secret/data/shop#api_key"}}})
    doc = store.inspect("api_key")
    assert doc["Spec"]["Driver"] == {"Name": "vault",
                                     "Options": {"path": "secret/data/shop#api_key"}}
    assert store.backend.range("secrets/values/")[0] == []
    with pytest.raises(PortsideError, match="no VAULT_ADDR"):
        store.value("api_key")


def test_configs_show_their_data(tmp_path: Path) -> None:
    configs = SecretStore(MemoryBackend(), Keyring(tmp_path / "k"), CONFIG)
    configs.create({"Name": "nginx.conf", "Data": _b64(b"server {}")})
    assert configs.inspect("nginx.conf")["Spec"]["Data"] == _b64(b"server {}")
    with pytest.raises(NotFound, match="config 'x' not found"):
        configs.inspect("x")


def test_the_key_file_is_checked_and_tampering_detected(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "state.db")
    try:
        store = SecretStore(backend, Keyring(tmp_path / "secrets.key"))
        store.create({"Name": "pw", "Data": _b64(VALUE)})
        # a new store on the same root and key opens it (the key is made once)
        assert SecretStore(backend, Keyring(tmp_path / "secrets.key")).value("pw") == VALUE
        other = SecretStore(backend, Keyring(tmp_path / "other.key"))
        with pytest.raises(SealBroken) as err:
            other.value("pw")
        assert VALUE.decode() not in str(err.value)
        os.chmod(tmp_path / "secrets.key", 0o644)
        with pytest.raises(PortsideError, match="readable by others"):
            SecretStore(backend, Keyring(tmp_path / "secrets.key")).value("pw")
    finally:
        backend.close()


class _Source:
    def lookup(self, ref: str) -> tuple[str, str]:
        if ref not in ("pw", "id1"):
            raise NotFound(f"secret {ref!r} not found")
        return "id1", "pw"

    def value(self, ref: str) -> bytes:
        return VALUE


def test_secret_references() -> None:
    refs = normalise([parse_secret("pw"), parse_secret("source=pw,target=db,uid=7,mode=0400")],
                     _Source())
    assert refs == [
        {"SecretID": "id1", "SecretName": "pw", "File": {"Name": "pw", "UID": "0", "GID": "0",
                                                          "Mode": 0o444}},
        {"SecretID": "id1", "SecretName": "pw", "File": {"Name": "db", "UID": "7", "GID": "0",
                                                          "Mode": 0o400}}]
    # Docker's SecretReference as a service sends it
    assert normalise([{"SecretID": "id1", "File": {"Name": "/run/secrets/x", "UID": "1",
                                                   "GID": "2", "Mode": 288}}], _Source()
                     )[0]["File"] == {"Name": "x", "UID": "1", "GID": "2", "Mode": 288}
    for bad, why in (("pw,target=a/b", "must be a file name"), ("pw,mode=9", "not octal"),
                     ("pw,colour=red", "unknown field"), ("target=x", "no secret name"),
                     ("pw,uid=x", "expected a number")):
        with pytest.raises(InvalidArgument, match=why):
            normalise([parse_secret(bad)], _Source())
    with pytest.raises(InvalidArgument, match="used twice"):
        normalise([parse_secret("pw"), parse_secret("id1")], _Source())
    with pytest.raises(NotFound):
        normalise([parse_secret("nope")], _Source())


@given(st.text(max_size=60))
def test_parse_secret_never_crashes(text: str) -> None:
    try:
        ref = parse_secret(text)
    except InvalidArgument as exc:
        assert "\n" not in str(exc).strip() or "\n" in text
    else:
        assert ref["SecretName"]


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)


@given(st.dictionaries(st.sampled_from(["Name", "Labels", "Data", "Driver", "Templating"]),
                       _json, max_size=5))
def test_create_body_is_accepted_or_refused_in_one_line(body: dict[str, object]) -> None:
    """Any JSON a client sends to POST /secrets/create: an ID or a 400/409, never a crash."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        store = SecretStore(MemoryBackend(), Keyring(Path(d) / "k"), SECRET,
                            {"vault": VaultDriver("", "")})
        try:
            sid = store.create(body)
        except (InvalidArgument, Conflict) as exc:
            assert "\n" not in str(exc)
        else:
            assert store.inspect(sid)["ID"] == sid


def test_vault_driver_never_shows_its_token() -> None:
    driver = VaultDriver.from_env({"VAULT_ADDR": "http://127.0.0.1:1/", "VAULT_TOKEN": "tok-9"})
    assert "tok-9" not in repr(driver) and driver.addr == "http://127.0.0.1:1"
    with pytest.raises(InvalidArgument, match="MOUNT/PATH#FIELD"):
        driver.check("k", {"path": "secret/data/shop"})
    driver.check("k", {"path": "secret/data/shop#api_key"})


def test_with_secrets_for_services() -> None:
    from portside.engine.secretfiles import SECRETS_KEY, with_secrets

    refs = [{"SecretID": "id1", "SecretName": "pw", "File": {"Name": "pw", "UID": "0",
                                                              "GID": "0", "Mode": 292}}]
    host = with_secrets({"Memory": 1}, refs)
    assert host == {"Memory": 1, SECRETS_KEY: refs}
    assert normalise(host[SECRETS_KEY], _Source()) == refs
    assert with_secrets({"Memory": 1}, []) == {"Memory": 1}
