"""Pull-through cache: serve from local storage, fetch what is missing from an upstream.

Tags are looked up upstream on every manifest request (the cached answer is used when the
upstream cannot be reached); manifests named by digest and blobs are immutable, fetched
once and then served locally. Blobs are fetched on first GET, verified by the content store
before they are visible, with one fetch per digest at a time. Only repositories matching
an allow rule (globs, `--proxy-allow`; all when none) are fetched; a cache never accepts
pushes or deletes.
"""

from __future__ import annotations

import asyncio
import fnmatch
from typing import TYPE_CHECKING

import aiohttp
from yarl import URL

from portside.errors import InvalidArgument
from portside.oci.model import Index, parse_document
from portside.registry.client import RegistryClient
from portside.registry.errors import RegistryError, RemoteError

if TYPE_CHECKING:
    from portside.registry.storage import RegistryStorage

CHUNK = 1 << 20
_NET_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)


class Proxy:
    """The upstream side of a pull-through cache; `storage` (the cache's) is set by
    `open_registry`."""

    def __init__(self, url: str, user: str | None = None, allow: list[str] | None = None) -> None:
        parsed = URL(url if "://" in url else f"https://{url}")
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise InvalidArgument(f"--proxy {url!r}: expected http(s)://host[:port]")
        self.host = parsed.raw_authority
        self.scheme = parsed.scheme
        self.auth: tuple[str, str] | None = None
        if user:
            name, sep, password = user.partition(":")
            if not sep:
                raise InvalidArgument("--proxy-user: expected USER:PASSWORD")
            self.auth = (name, password)
        self.allow = list(allow or [])
        self.storage: RegistryStorage | None = None
        self._client: RegistryClient | None = None
        self._locks: dict[str, asyncio.Lock] = {}

    def upstream_repo(self, repo: str) -> str:
        """Docker Hub keeps official images under `library/`; a mirror of it adds that."""
        hub = self.host in ("docker.io", "registry-1.docker.io", "index.docker.io")
        return f"library/{repo}" if hub and "/" not in repo else repo

    def allowed(self, repo: str) -> bool:
        return not self.allow or any(fnmatch.fnmatchcase(repo, rule) for rule in self.allow)

    async def client(self) -> RegistryClient:
        if self._client is None:
            client = RegistryClient(self.host, insecure=self.scheme == "http", auth=self.auth)
            await client.__aenter__()
            client.base = client.base.with_scheme(self.scheme)
            self._client = client
        return self._client

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def fetch_manifest(self, repo: str, reference: str) -> None:
        """Bring a manifest (and, for an index, its child manifests) into the cache."""
        assert self.storage is not None
        storage = self.storage
        if not self.allowed(repo):
            return
        is_digest = ":" in reference
        if is_digest:
            try:
                storage.resolve(repo, reference)
                return
            except RegistryError:
                pass
        async with self._lock(f"m {repo} {reference}"):
            client = await self.client()
            try:
                body, media_type, digest = await client.get_manifest(
                    self.upstream_repo(repo), reference)
            except RemoteError as exc:
                if exc.status == 404 or exc.code == "MANIFEST_UNKNOWN":
                    return
                if not is_digest and exc.status == 0:
                    return  # upstream down: answer from the cache
                raise RegistryError("UNSUPPORTED", f"upstream {self.host}: {exc}", status=502) from None
            except _NET_ERRORS:
                return
            doc = parse_document(body, f"upstream manifest {digest}", media_type or None)
            if isinstance(doc, Index):
                for child in doc.manifests:
                    await self.fetch_manifest(repo, child.digest)
            storage.put_manifest(repo, reference, body, media_type or None, require_blobs=False)

    async def fetch_blob(self, repo: str, digest: str) -> None:
        """Bring a blob into the cache (verified) so the caller can serve it from disk."""
        assert self.storage is not None
        storage = self.storage
        if not self.allowed(repo):
            return
        async with self._lock(f"b {digest}"):
            if storage.has_blob(repo, digest):
                return
            if storage.content.exists(digest):
                storage.link_blob(repo, digest)
                return
            client = await self.client()
            try:
                resp = await client.open_blob(self.upstream_repo(repo), digest)
            except RemoteError as exc:
                if exc.status == 404:
                    return
                raise RegistryError("UNSUPPORTED", f"upstream {self.host}: {exc}", status=502) from None
            except _NET_ERRORS as exc:
                raise RegistryError("UNSUPPORTED", f"upstream {self.host} unreachable: {exc}",
                                    status=502) from None
            async with resp:
                with storage.content.writer(digest) as writer:
                    async for chunk in resp.content.iter_chunked(CHUNK):
                        writer.write(chunk)
                    writer.commit()
            storage.link_blob(repo, digest)

    async def refresh_tags(self, repo: str) -> None:
        """Tag listings answer what the cache holds; nothing to fetch."""

    async def close(self) -> None:
        if self._client is not None:
            await self._client.__aexit__(None, None, None)
            self._client = None

