"""`/secrets` and `/configs` over the daemon's socket: Docker's shapes, as documents."""

from __future__ import annotations

import base64
import json
from typing import Any

from portside.client.transport import Client, _quote


class RemoteSecrets:
    """The daemon's secrets (`kind="secret"`) or configs (`kind="config"`)."""

    def __init__(self, kind: str = "secret", client: Client | None = None) -> None:
        self.plural = f"/{kind}s"
        self.client = client or Client()

    def create(self, name: str, data: bytes | None, labels: dict[str, str] | None = None,
               driver: str = "", options: dict[str, str] | None = None) -> str:
        body: dict[str, Any] = {"Name": name, "Labels": labels or {}}
        if data is not None:
            body["Data"] = base64.b64encode(data).decode()
        if driver:
            body["Driver"] = {"Name": driver, "Options": options or {}}
        doc = self.client.post(f"{self.plural}/create", body)
        return str(doc["ID"])

    def list(self, filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
        params = {"filters": json.dumps(filters)} if filters else {}
        docs: list[dict[str, Any]] = self.client.json("GET", self.plural, params)
        return docs

    def inspect(self, ref: str) -> dict[str, Any]:
        doc: dict[str, Any] = self.client.get(f"{self.plural}/{_quote(ref)}")
        return doc

    def update_labels(self, ref: str, labels: dict[str, str]) -> None:
        doc = self.inspect(ref)
        spec = {**doc["Spec"], "Labels": labels}
        self.client.post(f"{self.plural}/{_quote(doc['ID'])}/update", spec,
                         version=doc["Version"]["Index"])

    def remove(self, ref: str) -> None:
        self.client.json("DELETE", f"{self.plural}/{_quote(ref)}")
