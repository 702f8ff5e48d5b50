"""`registry serve --policy`: a tag push the policy does not admit is refused (403 DENIED,
the rule, repository and digest in the message); the same manifest pushed by digest,
signed, then tagged is accepted. The registry runs in a thread of the test."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.busybox import busybox_image
from helpers.regserver import run_registry

from portside.registry import server as srv
from portside.registry import transfer
from portside.registry.client import RegistryClient
from portside.registry.errors import RemoteError
from portside.store.images import ImageStore
from portside.trust import policy
from portside.trust.pushpolicy import RegistryPushPolicy

PASSWORD = "push door"


def portside(*args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "portside", *args], capture_output=True,
                            text=True, timeout=300,
                            env={**os.environ, "COSIGN_PASSWORD": PASSWORD})
    assert result.returncode == 0, result.stderr


def test_unsigned_tag_push_refused_signed_accepted(tmp_path: Path, root: Path) -> None:
    registry = srv.open_registry(tmp_path / "registry")
    running, stop = run_registry(registry)
    store = ImageStore(tmp_path / "src")
    try:
        host = running.host
        portside("key", "generate", "--name", "k", "--dir", str(tmp_path))
        doc = {"default": [{"type": "insecureAcceptAnything"}],
               "transports": {"docker": {f"{host}/shop": [
                   {"type": "sigstoreSigned", "keyPath": "k.pub",
                    "signedIdentity": {"type": "matchRepository"}}]}}}
        (tmp_path / "policy.json").write_text(json.dumps(doc))
        registry.push_policy = RegistryPushPolicy(policy.load(tmp_path / "policy.json"),
                                                  registry.storage)
        image = busybox_image(store, tags=(f"{host}/other/x:1", f"{host}/shop/web:1"))
        asyncio.run(transfer.push(store, f"{host}/other/x:1"))  # no rule: accepted

        with pytest.raises(RemoteError) as caught:
            asyncio.run(transfer.push(store, f"{host}/shop/web:1"))
        assert caught.value.status == 403 and caught.value.code == "DENIED"
        assert (f'transports.docker["{host}/shop"] sigstoreSigned refuses '
                f"{host}/shop/web@{image.manifest_digest}: no signature found") in str(caught.value)

        body = store.content.read(image.manifest_digest)

        async def put(reference: str) -> None:
            async with RegistryClient(host) as client:
                await client.put_manifest("shop/web", reference, body, image.media_type)
        asyncio.run(put(image.manifest_digest))  # by digest: not judged
        portside("sign", "--key", str(tmp_path / "k.key"),
                 f"{host}/shop/web@{image.manifest_digest}")
        asyncio.run(put("1"))  # signed now: the tag is accepted
    finally:
        store.db.close()
        stop()
