"""Secrets and configs: metadata in the state backend, values sealed with AES-GCM.

A record is Docker's object (`ID`, `Version`, `CreatedAt`, `UpdatedAt`, `Spec` without
`Data`) under `<kind>s/records/<id>`; the name index `<kind>s/names/<name>` is created in
the same transaction (only if absent), so two creates of one name cannot both win. The
value is sealed under `<kind>s/values/<id>` with the root's key (`keyring.Keyring`), the
record's ID as associated data, so a sealed value moved to another record does not open.
A secret with an external driver (Vault) keeps no value: only its reference, in
`Spec.Driver.Options`, read through that driver when a container starts.

Values never appear in a record, an error or a log line; configs (not secret, as Docker's)
give theirs back in `Spec.Data` on inspect.
"""

from __future__ import annotations

import base64
import json
import re
import secrets as token
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from portside.errors import Conflict, InvalidArgument, NotFound
from portside.state.backend import Compare, Delete, Put, StateBackend
from portside.trust.secrets.keyring import Keyring

# swarmkit's rule (api/validation): 64 of [a-zA-Z0-9-_.], starting and ending alphanumeric.
_NAME = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9._-]{0,62}[a-zA-Z0-9])?$")


@dataclass(frozen=True)
class Kind:
    """What differs between secrets and configs: the word, the key prefix, the size limit
    (swarmkit's MaxSecretSize and MaxConfigSize), and whether inspect shows the data."""

    word: str
    prefix: str
    max_size: int
    shows_data: bool


SECRET = Kind("secret", "secrets/", 500 * 1024, False)
CONFIG = Kind("config", "configs/", 1000 * 1024, True)


class NameInUse(Conflict):
    def __init__(self, word: str, name: str) -> None:
        super().__init__(f"{word} {name!r} already exists")
        self.name = name


class UnknownObject(NotFound):
    def __init__(self, word: str, ref: str) -> None:
        super().__init__(f"{word} {ref!r} not found")
        self.ref = ref


class OutOfSequence(Conflict):
    def __init__(self, word: str, ref: str, version: int) -> None:
        super().__init__(f"update of {word} {ref!r} out of sequence: version {version} is not "
                         "the current one (inspect it again)")


class ExternalDriver(Protocol):
    """A backend that holds the value elsewhere (Vault): checks the reference at create,
    reads the value at container start; errors are one line and never carry the value."""

    def check(self, name: str, options: Mapping[str, str]) -> None: ...

    def read(self, name: str, options: Mapping[str, str]) -> bytes: ...


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_name(word: str, name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidArgument(f"invalid {word} name {name!r}: only 64 [a-zA-Z0-9-_.] characters "
                              "allowed, and the start and end character must be [a-zA-Z0-9]")
    return name


def _labels(word: str, labels: object) -> dict[str, str]:
    if labels is None:
        return {}
    if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise InvalidArgument(f"invalid {word} labels: expected an object of strings")
    return dict(labels)


class SecretStore:
    """The secrets (or configs) of one root. `drivers` are the external backends by name;
    the local one (no driver, or "local") seals the value here."""

    def __init__(self, backend: StateBackend, keyring: Keyring, kind: Kind = SECRET,
                 drivers: Mapping[str, ExternalDriver] | None = None) -> None:
        self.backend = backend
        self.keyring = keyring
        self.kind = kind
        self.drivers = dict(drivers or {})

    def _key(self, part: str, name: str) -> str:
        return f"{self.kind.prefix}{part}/{name}"

    # -- create, inspect, list --

    def create(self, spec: Mapping[str, Any]) -> str:
        """POST /<kind>s/create: the new ID. `spec` is Docker's (Data is base64)."""
        word = self.kind.word
        name = check_name(word, spec.get("Name"))
        labels = _labels(word, spec.get("Labels"))
        driver = spec.get("Driver") or None
        if driver is not None and not isinstance(driver, dict):
            raise InvalidArgument(f"invalid {word} driver: expected an object")
        driver_name = (driver or {}).get("Name") or ""
        options = (driver or {}).get("Options") or {}
        if not isinstance(driver_name, str) or not isinstance(options, dict):
            raise InvalidArgument(f"invalid {word} driver: Name is a string, Options an object")
        options = {str(k): str(v) for k, v in options.items()}
        sid = token.token_hex(13)[:25]  # swarmkit's IDs are 25 base-36 characters
        spec_doc: dict[str, Any] = {"Name": name, "Labels": labels}
        ops: list[Any] = []
        if driver_name and driver_name != "local":
            external = self.drivers.get(driver_name)
            if external is None:
                raise InvalidArgument(f"{word} driver {driver_name!r} is not available "
                                      f"(known: local, {', '.join(sorted(self.drivers)) or '-'})")
            if spec.get("Data"):
                raise InvalidArgument(f"{word} {name!r}: a {driver_name} {word} takes no data "
                                      "(its value stays in the backend)")
            external.check(name, options)
            spec_doc["Driver"] = {"Name": driver_name, "Options": options}
        else:
            data = self._data(name, spec.get("Data"))
            ops.append(Put(self._key("values", sid), self.keyring.seal(data, sid.encode())))
        if spec.get("Templating"):
            raise InvalidArgument(f"{word} {name!r}: templating is not supported")
        now = _now()
        record = {"ID": sid, "CreatedAt": now, "UpdatedAt": now, "Spec": spec_doc}
        r = self.backend.txn([Compare.absent(self._key("names", name))],
                             [Put(self._key("names", name), sid.encode()),
                              Put(self._key("records", sid), json.dumps(record).encode()),
                              *ops])
        if not r.succeeded:
            raise NameInUse(word, name)
        return sid

    def _data(self, name: str, data: object) -> bytes:
        word = self.kind.word
        if not isinstance(data, str):
            raise InvalidArgument(f"{word} {name!r}: Data must be a base64 string")
        try:
            raw = base64.b64decode(data, validate=True)
        except ValueError:
            raise InvalidArgument(f"{word} {name!r}: Data is not valid base64") from None
        if not 0 < len(raw) <= self.kind.max_size:
            raise InvalidArgument(f"{word} {name!r}: data must be larger than 0 and at most "
                                  f"{self.kind.max_size // 1024} KB (got {len(raw)} bytes)")
        return raw

    def _record(self, ref: str) -> tuple[dict[str, Any], int]:
        """A record by ID, name or unique ID prefix, with its mod revision (the version)."""
        word = self.kind.word
        if not ref:
            raise UnknownObject(word, ref)
        kv = self.backend.get(self._key("records", ref))
        if kv is None:
            named = self.backend.get(self._key("names", ref))
            if named is not None:
                kv = self.backend.get(self._key("records", named.value.decode()))
        if kv is None:
            found, _ = self.backend.range(self._key("records", ref))
            if len(found) == 1:
                kv = found[0]
        if kv is None:
            raise UnknownObject(word, ref)
        return json.loads(kv.value), kv.mod_revision

    def _doc(self, record: dict[str, Any], version: int) -> dict[str, Any]:
        doc = {**record, "Version": {"Index": version}}
        if self.kind.shows_data and not record["Spec"].get("Driver"):
            value = self._sealed_value(record["ID"])
            doc["Spec"] = {**record["Spec"], "Data": base64.b64encode(value).decode()}
        return doc

    def inspect(self, ref: str) -> dict[str, Any]:
        return self._doc(*self._record(ref))

    def list(self, filters: Mapping[str, list[str]] | None = None) -> list[dict[str, Any]]:
        """GET /<kind>s with Docker's filters: id (prefix), name (prefix), names (exact),
        label (key or key=value)."""
        filters = filters or {}
        unknown = set(filters) - {"id", "name", "names", "label"}
        if unknown:
            raise InvalidArgument(f"invalid filter {sorted(unknown)[0]!r}")
        kvs, _ = self.backend.range(self._key("records", ""))
        out = []
        for kv in kvs:
            record = json.loads(kv.value)
            if _matches(record, filters):
                out.append(self._doc(record, kv.mod_revision))
        return sorted(out, key=lambda d: d["Spec"]["Name"])

    # -- update, remove --

    def update(self, ref: str, version: int, spec: Mapping[str, Any]) -> None:
        """POST /<kind>s/{id}/update: only the labels may change (as Docker's)."""
        record, _ = self._record(ref)
        word, name = self.kind.word, record["Spec"]["Name"]
        if spec.get("Name", name) != name:
            raise InvalidArgument(f"{word} {name!r}: only updates to Labels are allowed")
        if spec.get("Data") and not self.kind.shows_data:
            raise InvalidArgument(f"{word} {name!r}: only updates to Labels are allowed")
        record["Spec"] = {**record["Spec"], "Labels": _labels(word, spec.get("Labels"))}
        record["UpdatedAt"] = _now()
        key = self._key("records", record["ID"])
        r = self.backend.txn([Compare.mod_revision_is(key, version)],
                             [Put(key, json.dumps(record).encode())])
        if not r.succeeded:
            raise OutOfSequence(word, ref, version)

    def remove(self, ref: str) -> None:
        record, _ = self._record(ref)
        sid = record["ID"]
        self.backend.txn([], [Delete(self._key("records", sid)), Delete(self._key("values", sid)),
                              Delete(self._key("names", record["Spec"]["Name"]))])

    # -- values, for container start --

    def lookup(self, ref: str) -> tuple[str, str]:
        """(ID, name) of a secret by ID, name or ID prefix."""
        record, _ = self._record(ref)
        return record["ID"], record["Spec"]["Name"]

    def value(self, ref: str) -> bytes:
        """The bytes a container gets: unsealed here, or read from the secret's driver."""
        record, _ = self._record(ref)
        driver = record["Spec"].get("Driver")
        if driver:
            external = self.drivers.get(driver["Name"])
            if external is None:
                raise InvalidArgument(f"{self.kind.word} {record['Spec']['Name']!r}: driver "
                                      f"{driver['Name']!r} is not available in this daemon")
            return external.read(record["Spec"]["Name"], driver.get("Options") or {})
        return self._sealed_value(record["ID"])

    def _sealed_value(self, sid: str) -> bytes:
        kv = self.backend.get(self._key("values", sid))
        if kv is None:
            raise UnknownObject(self.kind.word, sid)
        return self.keyring.open(kv.value, sid.encode())


def _matches(record: dict[str, Any], filters: Mapping[str, list[str]]) -> bool:
    name, labels = record["Spec"]["Name"], record["Spec"].get("Labels") or {}
    if "id" in filters and not any(record["ID"].startswith(v) for v in filters["id"]):
        return False
    if "name" in filters and not any(name.startswith(v) for v in filters["name"]):
        return False
    if "names" in filters and name not in filters["names"]:
        return False
    for want in filters.get("label", []):
        key, sep, value = want.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True
