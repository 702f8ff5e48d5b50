"""Push, pull and replicate images: only the blobs the other side lacks travel.

Push: HEAD each blob, try a cross-repository mount from a repository the blob is known to
be in (remembered in `<store root>/registry-sources.db`), and upload the rest in parallel,
resuming a dropped upload from the offset the registry reports. Pull: fetch the manifest
(the host platform's from an index), download missing blobs in parallel straight into the
content store (resuming with `Range`), then record the image. The steps (`resolve`,
`fetch_blobs`, `record`) are public so the daemon can hold its own locks between them and
share downloads between concurrent pulls (`InFlight`). Replicate copies tags between two
registries the same way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from portside.errors import InvalidArgument
from portside.oci import mediatypes as mt
from portside.oci import reference as refs
from portside.oci.model import Descriptor, Index, Manifest, Platform, parse_document
from portside.registry.client import RETRIES, ConnectError, RegistryClient, sleep_backoff
from portside.registry.fileio import BlobSink
from portside.registry.progress import Progress, Quiet
from portside.store.images import Image, ImageStore

CHUNK = 1 << 20
MONOLITHIC_MAX = 8 << 20  # smaller blobs go in one PUT; larger ones by a resumable PATCH
PARALLEL = 4
NET_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)


@dataclass
class TransferReport:
    digest: str = ""
    sent: list[str] = field(default_factory=list)
    mounted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    bytes: int = 0
    image: Image | None = None


class MountSources:
    """Which repository of which registry holds a blob: candidates for cross-repo mounts."""

    def __init__(self, root: Path) -> None:
        self.db = sqlite3.connect(root / "registry-sources.db", timeout=30, isolation_level=None)
        self.db.execute("CREATE TABLE IF NOT EXISTS sources (registry TEXT, digest TEXT, repo TEXT,"
                        " PRIMARY KEY (registry, digest, repo))")

    def record(self, registry: str, digest: str, repo: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO sources VALUES (?, ?, ?)", (registry, digest, repo))

    def repos(self, registry: str, digest: str) -> list[str]:
        rows = self.db.execute("SELECT repo FROM sources WHERE registry = ? AND digest = ? LIMIT 5",
                               (registry, digest))
        return [r[0] for r in rows]

    def close(self) -> None:
        self.db.close()


async def _file_chunks(path: Path, offset: int, progress: Progress, key: str) -> AsyncIterator[bytes]:
    with open(path, "rb") as f:
        f.seek(offset)
        while chunk := f.read(CHUNK):
            progress.advance(key, len(chunk))
            yield chunk


async def upload_file(client: RegistryClient, repo: str, digest: str, size: int, path: Path,
                      progress: Progress) -> None:
    """Upload one blob from a file; a dropped connection resumes where the registry stopped."""
    if size <= MONOLITHIC_MAX:
        for attempt in range(RETRIES + 1):
            try:
                location = await client.start_upload(repo)
                await client.finish_upload(repo, location, digest,
                                           lambda: _file_chunks(path, 0, progress, digest), size)
                return
            except NET_ERRORS:
                if attempt == RETRIES:
                    raise
                await sleep_backoff(attempt)
    location = await client.start_upload(repo)
    offset = 0
    for attempt in range(RETRIES + 1):
        try:
            if offset < size:
                location = await client.patch_upload(
                    repo, location, functools.partial(_file_chunks, path, offset, progress, digest),
                    offset, size - offset)
            await client.finish_upload(repo, location, digest)
            return
        except NET_ERRORS:
            if attempt == RETRIES:
                raise
            await sleep_backoff(attempt)
            known = await client.upload_offset(repo, location)
            if known is None or known > size:
                location, known = await client.start_upload(repo), 0
            offset = known


async def push(store: ImageStore, reference: str, *, insecure: bool = False,
               progress: Progress | None = None, parallel: int = PARALLEL,
               auth: tuple[str, str] | None = None) -> TransferReport:
    """`portside push`: send an image of the local store to the registry its name points at."""
    progress = progress or Quiet()
    ref = refs.parse_tagged(reference)
    image = store.get(reference)
    manifest_bytes = store.manifest_bytes(image)
    manifest = store.manifest(image)
    report = TransferReport()
    sources = MountSources(store.root)
    repo, host = ref.path, ref.domain
    try:
        async with RegistryClient(host, insecure=insecure, auth=auth,
                                  connections=parallel + 2) as client:
            semaphore = asyncio.Semaphore(parallel)

            async def one(desc: Descriptor) -> None:
                async with semaphore:
                    if (await client.head_blob(repo, desc.digest, push=True)).exists:
                        report.skipped.append(desc.digest)
                        progress.done(desc.digest, "Layer already exists")
                        return
                    for source in sources.repos(host, desc.digest):
                        if source != repo and await client.mount(repo, desc.digest, source):
                            report.mounted.append(desc.digest)
                            progress.done(desc.digest, f"Mounted from {source}")
                            sources.record(host, desc.digest, repo)
                            return
                    progress.start(desc.digest, desc.size)
                    await upload_file(client, repo, desc.digest, desc.size,
                                      store.content.path(desc.digest), progress)
                    report.sent.append(desc.digest)
                    report.bytes += desc.size
                    sources.record(host, desc.digest, repo)
                    progress.done(desc.digest, "Pushed")

            unique = {d.digest: d for d in (*manifest.layers, manifest.config)}
            await asyncio.gather(*(one(d) for d in unique.values()))
            assert ref.tag is not None
            report.digest = await client.put_manifest(repo, ref.tag, manifest_bytes, image.media_type)
    except NET_ERRORS as exc:
        raise ConnectError(host, str(exc) or type(exc).__name__) from None
    finally:
        sources.close()
        progress.close()
    return report


async def download(client: RegistryClient, repo: str, desc: Descriptor, store: ImageStore,
                   progress: Progress) -> None:
    """Fetch one blob into the content store, verified; resumes with Range after a drop.

    Hashing and writing run on a worker thread, a batch of about 1 MiB at a time, while the
    next batch arrives.
    """
    loop = asyncio.get_running_loop()
    with BlobSink(store.content, desc.digest, desc.size) as writer:
        progress.start(desc.digest, desc.size)
        for attempt in range(RETRIES + 1):
            pending: asyncio.Future[Any] | None = None
            try:
                async with await client.open_blob(repo, desc.digest, writer.size) as resp:
                    skip = writer.size if resp.status == 200 else 0  # the registry ignored Range
                    parts: list[bytes] = []
                    buffered = 0
                    async for chunk in resp.content.iter_any():
                        if skip:
                            cut = min(skip, len(chunk))
                            chunk, skip = chunk[cut:], skip - cut
                        parts.append(chunk)
                        buffered += len(chunk)
                        if buffered >= CHUNK:
                            if pending is not None:
                                await pending
                            pending = loop.run_in_executor(None, writer.write, b"".join(parts))
                            progress.advance(desc.digest, buffered)
                            parts, buffered = [], 0
                    if pending is not None:
                        await pending
                    pending = None
                    if parts:
                        writer.write(b"".join(parts))
                        progress.advance(desc.digest, buffered)
                if writer.size >= desc.size:
                    break
            except NET_ERRORS:
                if pending is not None:
                    await pending  # what reached the writer stays: resume after it
                if attempt == RETRIES:
                    raise
                await sleep_backoff(attempt)
        await loop.run_in_executor(None, writer.commit)
    progress.done(desc.digest, "Pull complete")


@dataclass
class Resolved:
    """The image manifest a reference names (one platform's, when it names an index)."""

    ref: refs.Reference
    manifest: Manifest
    body: bytes
    media_type: str | None
    digest: str
    index_digest: str | None = None
    index_body: bytes = b""


async def resolve(client: RegistryClient, ref: refs.Reference,
                  platform: Platform | None = None) -> Resolved:
    """Fetch the manifest `ref` names; from an index, `platform`'s (the host's by default)."""
    repo = ref.path
    body, media_type, digest = await client.get_manifest(repo, ref.digest or ref.tag or "latest")
    doc = parse_document(body, f"{ref}", _manifest_type(media_type))
    index_digest, index_body = None, b""
    if isinstance(doc, Index):
        chosen = doc.for_platform(platform)
        if chosen is None:
            wanted = str(platform) if platform else "this platform"
            raise InvalidArgument(f"{ref}: the image index has no manifest for {wanted}")
        index_digest, index_body = digest, body
        body, media_type, digest = await client.get_manifest(repo, chosen.digest)
        doc = parse_document(body, f"{ref}@{digest}", _manifest_type(media_type))
    if not isinstance(doc, Manifest) or not doc.is_image:
        raise InvalidArgument(f"{ref}: not a container image (artifact or unknown config)")
    return Resolved(ref, doc, body, _manifest_type(media_type), digest, index_digest, index_body)


class InFlight:
    """Blobs being downloaded by the pulls of one process (each may run its own event loop).

    A pull that wants a blob another pull is fetching waits for that download instead of
    starting a second one; if the first fails, the waiter fetches the blob itself.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, concurrent.futures.Future[None]] = {}

    async def fetch(self, digest: str, exists: Callable[[], bool],
                    download: Callable[[], Awaitable[None]]) -> bool:
        """Run `download` unless the blob arrives through another pull; True when this did."""
        while True:
            with self._lock:
                running = self._running.get(digest)
                if running is None:
                    mine: concurrent.futures.Future[None] = concurrent.futures.Future()
                    self._running[digest] = mine
            if running is None:
                break
            with contextlib.suppress(Exception):
                await asyncio.wrap_future(running)
            if exists():
                return False
        if exists():  # it arrived between the caller's check and the claim
            self._finish(digest)
            mine.set_result(None)
            return False
        try:
            await download()
        except BaseException as exc:
            self._finish(digest)
            mine.set_exception(exc)
            raise
        self._finish(digest)
        mine.set_result(None)
        return True

    def _finish(self, digest: str) -> None:
        with self._lock:
            self._running.pop(digest, None)


async def fetch_blobs(client: RegistryClient, resolved: Resolved, store: ImageStore,
                      progress: Progress, report: TransferReport, sources: MountSources,
                      parallel: int = PARALLEL, inflight: InFlight | None = None) -> None:
    """Download the config and layers the store lacks, `parallel` at a time."""
    repo, host = resolved.ref.path, resolved.ref.domain
    semaphore = asyncio.Semaphore(parallel)

    async def one(desc: Descriptor) -> None:
        fetch = functools.partial(download, client, repo, desc, store, progress)
        async with semaphore:
            if store.content.exists(desc.digest):
                report.skipped.append(desc.digest)
                progress.done(desc.digest, "Already exists")
            elif inflight is None or await inflight.fetch(
                    desc.digest, functools.partial(store.content.exists, desc.digest), fetch):
                if inflight is None:
                    await fetch()
                report.sent.append(desc.digest)
                report.bytes += desc.size
            else:  # another pull fetched it meanwhile
                report.skipped.append(desc.digest)
                progress.done(desc.digest, "Pull complete")
            sources.record(host, desc.digest, repo)

    doc = resolved.manifest
    unique = {d.digest: d for d in (doc.config, *doc.layers)}
    await asyncio.gather(*(one(d) for d in unique.values()))


def record(store: ImageStore, resolved: Resolved) -> Image:
    """Record a pulled image (its blobs are in the store), tagged unless named by digest."""
    ref = resolved.ref
    if resolved.index_digest:
        store.content.put(resolved.index_body, resolved.index_digest)
    tags = [str(ref)] if ref.tag and not ref.digest else []
    return store.add_image(resolved.body, tags, index_digest=resolved.index_digest,
                           media_type=resolved.media_type)


async def pull(store: ImageStore, reference: str, *, insecure: bool = False,
               progress: Progress | None = None, parallel: int = PARALLEL,
               auth: tuple[str, str] | None = None) -> TransferReport:
    """`portside pull`: fetch an image (the host platform's, from an index) into the store."""
    progress = progress or Quiet()
    ref = refs.parse(reference).with_default_tag()
    host = ref.domain
    report = TransferReport()
    sources = MountSources(store.root)
    try:
        async with RegistryClient(host, insecure=insecure, auth=auth,
                                  connections=parallel + 2) as client:
            resolved = await resolve(client, ref)
            report.digest = resolved.index_digest or resolved.digest
            with store.importing():
                await fetch_blobs(client, resolved, store, progress, report, sources, parallel)
                report.image = record(store, resolved)
    except NET_ERRORS as exc:
        raise ConnectError(host, str(exc) or type(exc).__name__) from None
    finally:
        sources.close()
        progress.close()
    return report


def _manifest_type(media_type: str) -> str | None:
    return media_type if media_type in mt.MANIFESTS or media_type in mt.INDEXES else None


async def copy_blob(src: RegistryClient, dst: RegistryClient, repo: str, desc: Descriptor,
                    dst_repo: str) -> None:
    """Stream one blob from `src` to `dst` without touching the disk."""
    for attempt in range(RETRIES + 1):
        try:
            async with await src.open_blob(repo, desc.digest) as resp:
                location = await dst.start_upload(dst_repo)
                consumed = False

                def body() -> Any:
                    nonlocal consumed
                    if consumed:  # a stream cannot be sent twice: let the retry loop restart
                        raise aiohttp.ClientPayloadError("blob stream already consumed")
                    consumed = True
                    return resp.content.iter_chunked(CHUNK)

                await dst.finish_upload(dst_repo, location, desc.digest, body, desc.size)
            return
        except NET_ERRORS:
            if attempt == RETRIES:
                raise
            await sleep_backoff(attempt)


async def copy_manifest(src: RegistryClient, dst: RegistryClient, repo: str, reference: str,
                        dst_repo: str, report: TransferReport) -> None:
    body, media_type, digest = await src.get_manifest(repo, reference)
    doc = parse_document(body, f"{src.host}/{repo}:{reference}", _manifest_type(media_type))
    if isinstance(doc, Index):
        for child in doc.manifests:
            if await dst.head_manifest(dst_repo, child.digest) is None:
                await copy_manifest(src, dst, repo, child.digest, dst_repo, report)
    else:
        for desc in (doc.config, *doc.layers):
            if desc.urls:
                continue
            if (await dst.head_blob(dst_repo, desc.digest, push=True)).exists:
                report.skipped.append(desc.digest)
                continue
            await copy_blob(src, dst, repo, desc, dst_repo)
            report.sent.append(desc.digest)
            report.bytes += desc.size
    await dst.put_manifest(dst_repo, reference, body, media_type or doc.media_type)


async def replicate(source: str, destination: str, repos: list[str] | None = None, *,
                    insecure: bool = False) -> dict[str, TransferReport]:
    """Copy every tag of `repos` (all of the catalog by default) from one registry to another."""
    out: dict[str, TransferReport] = {}
    async with RegistryClient(source, insecure=insecure) as src, \
            RegistryClient(destination, insecure=insecure) as dst:
        names = repos or await src.catalog()
        for repo in names:
            report = out[repo] = TransferReport()
            for tag in await src.tags(repo):
                await copy_manifest(src, dst, repo, tag, repo, report)
    return out
