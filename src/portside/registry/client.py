"""A client for any OCI/Docker registry: transport, authentication, and the API calls.

Authentication follows what a registry asks for: `GET /v2/` tells the scheme; Basic
sends the stored credentials, Bearer fetches a token for each repository scope from the
realm (Docker token spec), anonymously when there are no credentials. Requests that get
a 401 anyway (an expired token, a wider scope such as a mount source) fetch a new token
and are sent again. http is used for localhost and 127.0.0.0/8, or for a registry marked
insecure when https fails; https with verification otherwise.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import os
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from portside.numbers import is_digits
from portside.oci import digest as digests
from portside.oci import mediatypes as mt
from portside.oci.model import MAX_MANIFEST_BYTES
from portside.registry import credentials
from portside.registry.errors import AuthFailed, RemoteError

ACCEPT_MANIFESTS = ", ".join([mt.OCI_INDEX, mt.OCI_MANIFEST, mt.DOCKER_MANIFEST_LIST, mt.DOCKER_MANIFEST])
CHUNK = 1 << 20
RETRIES = 4
_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')


class ConnectError(RemoteError):
    def __init__(self, host: str, reason: str) -> None:
        super(RemoteError, self).__init__(f"cannot reach registry {host}: {reason}")
        self.status = 0
        self.code = ""


def insecure_hosts() -> set[str]:
    """Registries reached over plain http when https fails (`PORTSIDE_INSECURE_REGISTRIES`)."""
    return {h.strip() for h in os.environ.get("PORTSIDE_INSECURE_REGISTRIES", "").split(",") if h.strip()}


def is_local(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="...",service="..."` -> ("bearer", {"realm": ..., "service": ...})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m[1].lower(): (m[2] if m[2] else m[3]) for m in _CHALLENGE_PARAM.finditer(rest)}
    return scheme.lower(), params


def api_host(domain: str) -> str:
    return "registry-1.docker.io" if domain == "docker.io" else domain


@dataclass
class BlobStatus:
    exists: bool
    size: int = -1


class RegistryClient:
    """One registry host; use `async with`. Scopes are `repository:<name>:<actions>`."""

    def __init__(self, host: str, *, insecure: bool = False,
                 auth: tuple[str, str] | None = None, connections: int = 8) -> None:
        self.host = api_host(host)
        self.insecure = insecure or self.host in insecure_hosts() or host in insecure_hosts()
        self.auth = auth if auth is not None else credentials.get(host)
        self.base = URL(f"{'http' if is_local(self.host) else 'https'}://{self.host}")
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        self._challenge: tuple[str, dict[str, str]] | None = None
        self._pinged = False
        self._flipped = False
        self._tokens: dict[str, str] = {}
        self._ping_lock = asyncio.Lock()

    async def __aenter__(self) -> RegistryClient:
        timeout = aiohttp.ClientTimeout(total=None, connect=30, sock_read=300)
        connector = aiohttp.TCPConnector(limit=self._connections, ssl=not self.insecure)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=timeout, auto_decompress=False,
            headers={"User-Agent": "portside"},
        )
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "use RegistryClient in `async with`"
        return self._session

    # -- authentication --

    async def ping(self) -> None:
        """`GET /v2/`: pick http/https and learn how the registry wants to be authenticated."""
        if self._pinged:
            return
        async with self._ping_lock:
            if not self._pinged:
                await self._ping()

    async def _ping(self) -> None:
        try:
            resp = await self.session.get(self.base / "v2/")
        except (aiohttp.ClientConnectorError, aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
            # An insecure registry may speak plain http; a local one may speak https (TLS
            # still verified unless insecure). Each gets one try with the other scheme.
            if not self._flipped and (
                (self.base.scheme == "https" and self.insecure)
                or (self.base.scheme == "http" and is_local(self.host))
            ):
                self._flipped = True
                self.base = self.base.with_scheme("https" if self.base.scheme == "http" else "http")
                return await self._ping()
            raise ConnectError(self.host, str(exc)) from None
        async with resp:
            await resp.read()
            if resp.status == 401:
                self._challenge = parse_challenge(resp.headers.get("WWW-Authenticate", ""))
            elif resp.status >= 400:
                raise RemoteError(f"registry {self.host}", resp.status)
        self._pinged = True

    def _basic(self) -> str | None:
        if self.auth is None:
            return None
        return "Basic " + base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()

    async def _token(self, scope: str, params: dict[str, str], refresh: bool = False) -> str:
        key = scope or "-"
        if key in self._tokens and not refresh:
            return self._tokens[key]
        realm = params.get("realm")
        if not realm:
            raise AuthFailed(f"registry {self.host}", 401)
        query = {"service": params.get("service", "")} if params.get("service") else {}
        if scope:
            query["scope"] = scope
        headers = {}
        basic = self._basic()
        if basic:
            headers["Authorization"] = basic
        async with self.session.get(realm, params=query, headers=headers) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise AuthFailed(f"token server of {self.host}", resp.status, body)
            data = await resp.json(content_type=None)
        token = str(data.get("token") or data.get("access_token") or "")
        if not token:
            raise AuthFailed(f"token server of {self.host}", 401)
        self._tokens[key] = token
        return token

    async def _auth_header(self, scope: str, refresh: bool = False,
                           challenge: tuple[str, dict[str, str]] | None = None) -> str | None:
        await self.ping()
        scheme, params = challenge or self._challenge or ("", {})
        if scheme == "basic":
            return self._basic()
        if scheme == "bearer":
            return "Bearer " + await self._token(scope, params, refresh)
        return None

    async def request(self, method: str, url: URL | str, scope: str, *,
                      headers: dict[str, str] | None = None,
                      body: Callable[[], Any] | None = None,
                      ok: tuple[int, ...] = (200,), allow_redirects: bool = True,
                      ) -> aiohttp.ClientResponse:
        """Send a request with auth; `body()` makes a fresh body for each attempt."""
        auth = await self._auth_header(scope)  # pings first: the scheme is known after it
        target = url if isinstance(url, URL) else self.base.join(URL(url))
        if target.host == self.base.host and target.scheme != self.base.scheme:
            target = target.with_scheme(self.base.scheme)  # built before the ping settled it
        challenge = None
        for attempt in range(2):
            hdrs = dict(headers or {})
            if auth:
                hdrs["Authorization"] = auth
            resp = await self.session.request(
                method, target, headers=hdrs, data=body() if body else None,
                allow_redirects=allow_redirects,
            )
            if resp.status == 401 and attempt == 0:
                header = resp.headers.get("WWW-Authenticate", "")
                resp.release()
                challenge = parse_challenge(header) if header else None
                if challenge and challenge[0] == "bearer" and challenge[1].get("scope"):
                    wanted = challenge[1]["scope"]
                    scope = wanted if wanted == scope else f"{scope} {wanted}".strip()
                auth = await self._auth_header(scope, refresh=True, challenge=challenge)
                if auth is None:
                    break
                continue
            if resp.status in ok:
                return resp
            data = await resp.read()
            resp.release()
            cls = AuthFailed if resp.status in (401, 403) else RemoteError
            raise cls(f"{method} {target.path} on {self.host}", resp.status, data)
        raise AuthFailed(f"{method} {target.path} on {self.host}", 401)

    # -- API calls --

    def _repo_url(self, repo: str, *parts: str) -> URL:
        return self.base.join(URL("/v2/" + repo + "/" + "/".join(parts)))

    async def check(self) -> None:
        """Authenticate against `/v2/` (what `login` verifies)."""
        resp = await self.request("GET", "/v2/", "")
        resp.release()

    async def get_manifest(self, repo: str, reference: str) -> tuple[bytes, str, str]:
        """(bytes, media type, digest) of a manifest or index; verified when named by digest."""
        scope = f"repository:{repo}:pull"
        async with await self.request("GET", self._repo_url(repo, "manifests", reference), scope,
                                      headers={"Accept": ACCEPT_MANIFESTS}) as resp:
            body = await resp.content.read(MAX_MANIFEST_BYTES + 1)
            if len(body) > MAX_MANIFEST_BYTES:
                raise RemoteError(f"manifest {repo}:{reference} on {self.host} larger than 4 MiB", 0)
            media_type = resp.headers.get("Content-Type", "").partition(";")[0]
            header_digest = resp.headers.get("Docker-Content-Digest", "")
        algorithm = reference.partition(":")[0] if ":" in reference else "sha256"
        digest = digests.of_bytes(body, algorithm)
        if ":" in reference and digest != reference:
            from portside.errors import DigestMismatch

            raise DigestMismatch(reference, digest, f"manifest from {self.host}/{repo}")
        if header_digest and ":" not in reference and digests.is_valid(header_digest) \
                and header_digest.startswith("sha256:") and header_digest != digest:
            from portside.errors import DigestMismatch

            raise DigestMismatch(header_digest, digest, f"manifest from {self.host}/{repo}")
        return body, media_type, digest

    async def head_manifest(self, repo: str, reference: str) -> str | None:
        scope = f"repository:{repo}:pull"
        resp = await self.request("HEAD", self._repo_url(repo, "manifests", reference), scope,
                                  headers={"Accept": ACCEPT_MANIFESTS}, ok=(200, 404))
        resp.release()
        return resp.headers.get("Docker-Content-Digest") if resp.status == 200 else None

    async def put_manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> str:
        scope = f"repository:{repo}:pull,push"
        resp = await self.request("PUT", self._repo_url(repo, "manifests", reference), scope,
                                  headers={"Content-Type": media_type}, body=lambda: body,
                                  ok=(200, 201, 202))
        resp.release()
        return resp.headers.get("Docker-Content-Digest") or digests.of_bytes(body)

    async def head_blob(self, repo: str, digest: str, push: bool = False) -> BlobStatus:
        scope = f"repository:{repo}:{'pull,push' if push else 'pull'}"
        resp = await self.request("HEAD", self._repo_url(repo, "blobs", digest), scope,
                                  ok=(200, 404))
        resp.release()
        if resp.status != 200:
            return BlobStatus(False)
        return BlobStatus(True, int(resp.headers.get("Content-Length", -1)))

    async def open_blob(self, repo: str, digest: str, offset: int = 0) -> aiohttp.ClientResponse:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        return await self.request("GET", self._repo_url(repo, "blobs", digest),
                                  f"repository:{repo}:pull", headers=headers, ok=(200, 206))

    async def mount(self, repo: str, digest: str, source: str) -> bool:
        """Cross-repository mount; False (the upload the registry opened is cancelled) if refused."""
        scope = f"repository:{repo}:pull,push repository:{source}:pull"
        url = self._repo_url(repo, "blobs", "uploads/").with_query(mount=digest, **{"from": source})
        resp = await self.request("POST", url, scope, ok=(201, 202), headers={"Content-Length": "0"})
        resp.release()
        if resp.status == 202 and resp.headers.get("Location"):
            with_cancel = self.base.join(URL(resp.headers["Location"]))
            r = await self.request("DELETE", with_cancel, f"repository:{repo}:pull,push",
                                   ok=(200, 202, 204, 404))
            r.release()
        return resp.status == 201

    async def start_upload(self, repo: str) -> URL:
        resp = await self.request("POST", self._repo_url(repo, "blobs", "uploads/"),
                                  f"repository:{repo}:pull,push", ok=(202,),
                                  headers={"Content-Length": "0"})
        resp.release()
        return self.base.join(URL(resp.headers["Location"]))

    async def upload_offset(self, repo: str, location: URL) -> int | None:
        """Bytes an upload holds (from its `Range`), None when the registry forgot it."""
        resp = await self.request("GET", location, f"repository:{repo}:pull,push", ok=(204, 404))
        resp.release()
        if resp.status != 204:
            return None
        end = resp.headers.get("Range", "0-0").rpartition("-")[2]
        return int(end) + 1 if is_digits(end) and resp.headers.get("Range") != "0-0" else 0

    async def patch_upload(self, repo: str, location: URL, stream: Callable[[], AsyncIterator[bytes]],
                           offset: int, length: int) -> URL:
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(length)}
        if offset:
            headers["Content-Range"] = f"{offset}-{offset + length - 1}"
        resp = await self.request("PATCH", location, f"repository:{repo}:pull,push",
                                  headers=headers, body=stream, ok=(202, 204))
        resp.release()
        return self.base.join(URL(resp.headers.get("Location") or str(location)))

    async def finish_upload(self, repo: str, location: URL, digest: str,
                            data: Callable[[], Any] | None = None, length: int = 0) -> None:
        url = location.update_query(digest=digest)
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(length)}
        resp = await self.request("PUT", url, f"repository:{repo}:pull,push", headers=headers,
                                  body=data, ok=(201, 204))
        resp.release()

    async def put_blob(self, repo: str, data: bytes) -> str:
        """Upload a small blob in one request (monolithic upload); its digest."""
        digest = digests.of_bytes(data)
        if not (await self.head_blob(repo, digest, push=True)).exists:
            location = await self.start_upload(repo)
            await self.finish_upload(repo, location, digest, lambda: data, len(data))
        return digest

    async def get_blob(self, repo: str, digest: str, limit: int) -> bytes:
        """A small blob, verified against its digest; at most `limit` bytes."""
        async with await self.open_blob(repo, digest) as resp:
            body = await resp.content.read(limit + 1)
        if len(body) > limit:
            raise RemoteError(f"blob {digest} in {repo} on {self.host} larger than {limit} bytes", 0)
        if digests.of_bytes(body, digest.partition(":")[0]) != digest:
            from portside.errors import DigestMismatch

            raise DigestMismatch(digest, digests.of_bytes(body), f"blob from {self.host}/{repo}")
        return body

    async def referrers(self, repo: str, digest: str) -> list[dict[str, Any]]:
        """The descriptors of the manifests whose subject is `digest` (OCI 1.1 referrers API);
        empty when the registry does not serve the API."""
        resp = await self.request("GET", self._repo_url(repo, "referrers", digest),
                                  f"repository:{repo}:pull", ok=(200, 404))
        async with resp:
            if resp.status != 200:
                return []
            body = await resp.content.read(MAX_MANIFEST_BYTES + 1)
        try:
            doc = json.loads(body)
        except ValueError:
            return []
        found = doc.get("manifests") if isinstance(doc, dict) else None
        return [d for d in found if isinstance(d, dict)] if isinstance(found, list) else []

    async def _paged(self, url: URL, scope: str, key: str) -> list[str]:
        out: list[str] = []
        next_url: URL | None = url
        while next_url is not None and len(out) < 1_000_000:
            async with await self.request("GET", next_url, scope) as resp:
                data = await resp.json(content_type=None)
                link = resp.headers.get("Link", "")
            out.extend(str(x) for x in (data.get(key) or []))
            m = re.search(r"<([^>]+)>", link)
            next_url = self.base.join(URL(m[1])) if m else None
        return out

    async def tags(self, repo: str) -> list[str]:
        return await self._paged(self._repo_url(repo, "tags", "list"), f"repository:{repo}:pull", "tags")

    async def catalog(self) -> list[str]:
        return await self._paged(self.base / "v2" / "_catalog", "registry:catalog:*", "repositories")


async def sleep_backoff(attempt: int) -> None:
    await asyncio.sleep(min(0.2 * 2**attempt, 5))
