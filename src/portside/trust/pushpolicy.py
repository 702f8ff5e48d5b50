"""The image policy at a registry's door (`registry serve --policy`): a manifest pushed
under a tag is judged by the policy as `HOST/REPO:TAG` (HOST as the client addressed the
registry), with the signatures read from the registry's own storage, so the check needs no
credentials and no request to itself.
"""

from __future__ import annotations

from typing import Any

from portside.oci import digest as digests
from portside.oci import reference as refs
from portside.registry.errors import RegistryError
from portside.registry.storage import RegistryStorage
from portside.trust.enforce import PolicyEnforcer
from portside.trust.policy import Policy


class StorageSource:
    """Signatures as a registry server's storage holds them."""

    def __init__(self, storage: RegistryStorage) -> None:
        self.storage = storage

    async def manifest(self, repo: str, reference: str) -> bytes | None:
        try:
            return self.storage.manifest_bytes(self.storage.resolve(repo, reference))
        except RegistryError:
            return None

    async def blob(self, repo: str, digest: str, limit: int) -> bytes:
        path = self.storage.blob_path(repo, digest)
        if path.stat().st_size > limit:
            raise RegistryError("BLOB_UNKNOWN", f"blob {digest} larger than {limit} bytes")
        data = path.read_bytes()
        if digests.of_bytes(data) != digest:
            raise RegistryError("BLOB_UNKNOWN", f"blob {digest} does not match its digest")
        return data

    async def referrers(self, repo: str, digest: str) -> list[dict[str, Any]]:
        return [{"mediaType": r.media_type, "digest": r.digest, "size": r.size,
                 "artifactType": r.artifact_type}
                for r in self.storage.referrers(repo, digest)]


class RegistryPushPolicy:
    """The registry's `PushPolicy`, from a `policy.json`."""

    def __init__(self, policy: Policy, storage: RegistryStorage) -> None:
        self.enforcer = PolicyEnforcer(policy, StorageSource(storage))

    async def refusal(self, host: str, repo: str, tag: str, digest: str) -> str | None:
        return await self.enforcer.verdict(refs.parse(f"{host}/{repo}:{tag}"), digest)
