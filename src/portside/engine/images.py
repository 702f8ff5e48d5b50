"""The engine's image service: pull, push, tag, remove, load, save, import, history, prune.

It is given the ImageStore, the EventBus and the engine's image lock, and a way to ask
whether an image's holder is a running container. Every method blocks and is meant to run
in a worker thread of the daemon: registry transfers run on an event loop of their own in
that thread, exactly as `portside pull/push` run them, and report Docker's JSON progress
messages through a callback. Store writes happen under the lock (the store's SQLite
connection is shared by the daemon's threads). A pull does not hold the store's import
lock while it downloads: its blobs are leased instead (`lease_content`), so garbage
collection, which runs under the image lock, never waits for a download, and two pulls of
one image share each blob's download (`InFlight`). Errors are typed and carry Docker's
wording, so the API maps them once to statuses.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Callable
from typing import IO

from portside.engine.events import EventBus
from portside.engine.imagepolicy import ImagePolicy
from portside.engine.imageprogress import Emit, PullProgress, PushProgress, status
from portside.engine.imagetypes import (
    HistoryEntry,
    NoSuchImage,
    NotTaggedLocally,
    PruneFilters,
    PruneReport,
    PullNotFound,
    RegistryAuth,
    RegistryFailure,
    RemovedItem,
    label_matches,
    parse_platform,
)
from portside.errors import Conflict, ImageUnknown, InvalidArgument
from portside.oci import reference as refs
from portside.oci.model import Platform
from portside.registry import transfer
from portside.registry.client import ConnectError, RegistryClient
from portside.registry.errors import RemoteError
from portside.store.images import Image, ImageStore
from portside.times import parse_time

__all__ = ["ImageService", "NoSuchImage", "PruneFilters", "RegistryAuth"]
PULL_LEASE = "daemon-pull-"  # content-lease holders of the pulls under way


class ImageService:
    """What the daemon does with images; each method runs in a worker thread."""

    def __init__(self, store: ImageStore, events: EventBus, lock: threading.RLock,
                 holder_running: Callable[[str], bool],
                 policy: ImagePolicy | None = None) -> None:
        self.store = store
        self.policy = policy  # asked before a pulled image's blobs are fetched
        self.events = events
        self.lock = lock
        self.holder_running = holder_running  # a holder that is no container counts as running
        self.inflight = transfer.InFlight()
        with lock:  # one daemon per root: a pull lease still there was cut off by a crash
            store.release_content_of(PULL_LEASE)

    # -- lookups and events --

    def get(self, name: str) -> Image:
        try:
            with self.lock:
                return self.store.get(name)
        except ImageUnknown:
            raise NoSuchImage(name) from None

    def _event(self, action: str, actor: str, name: str, image: Image | None = None) -> None:
        """Docker's image event: the image's labels plus `name` as attributes."""
        attrs: dict[str, str] = {}
        if image is not None:
            attrs.update(self.store.config(image).config.get("Labels") or {})
        attrs["name"] = name
        self.events.publish("image", action, actor, attrs)

    # -- pull and push --

    def pull(self, reference: str, auth: RegistryAuth | None, emit: Emit,
             platform: str = "", all_tags: bool = False, insecure: bool = False) -> list[Image]:
        """`POST /images/create?fromImage=`: fetch an image (every tag of the repository
        with `all_tags` and a bare name); nothing is recorded unless whole.

        Registry errors before the first message (a missing tag or repository, a refusal)
        are raised as they are, so the API can answer them with a status."""
        ref = refs.parse(reference)
        if not all_tags:
            ref = ref.with_default_tag()
        return asyncio.run(self._pull(ref, auth, emit, parse_platform(platform), insecure))

    async def _pull(self, ref: refs.Reference, auth: RegistryAuth | None, emit: Emit,
                    platform: Platform | None, insecure: bool = False) -> list[Image]:
        host = ref.domain
        sources = transfer.MountSources(self.store.root)
        images: list[Image] = []
        fresh = False
        try:
            async with RegistryClient(host, auth=auth.pair() if auth else None, insecure=insecure,
                                      connections=transfer.PARALLEL + 2) as client:
                targets = [ref]
                if not ref.tag and not ref.digest:
                    try:
                        targets = [ref.with_tag(t) for t in sorted(await client.tags(ref.path))]
                    except RemoteError as exc:
                        raise _not_found(ref, exc) from None
                for target in targets:
                    image, new = await self._pull_one(client, target, emit, platform, sources)
                    images.append(image)
                    fresh = fresh or new
        except RemoteError as exc:
            raise RegistryFailure(exc) from None
        except transfer.NET_ERRORS as exc:
            raise RegistryFailure(ConnectError(host, str(exc) or type(exc).__name__)) from None
        finally:
            sources.close()
        word = "Downloaded newer image for" if fresh else "Image is up to date for"
        emit(status(f"Status: {word} {ref.familiar()}"))
        self._event("pull", ref.familiar(), ref.familiar(), images[-1] if images else None)
        return images

    async def _pull_one(self, client: RegistryClient, ref: refs.Reference, emit: Emit,
                        platform: Platform | None,
                        sources: transfer.MountSources) -> tuple[Image, bool]:
        """One tag or digest: (the image, whether anything changed in the store)."""
        try:
            resolved = await transfer.resolve(client, ref, platform)
        except RemoteError as exc:
            raise _not_found(ref, exc) from None
        if self.policy is not None:
            await self.policy.admit([str(ref)], resolved.index_digest or resolved.digest)
        manifest = resolved.manifest
        holder = PULL_LEASE + secrets.token_hex(8)
        report = transfer.TransferReport()
        try:
            with self.lock:
                for digest in (manifest.config.digest, *(d.digest for d in manifest.layers)):
                    self.store.lease_content(holder, digest)
            emit(status(f"Pulling from {ref.path}", ref.digest or ref.tag))
            progress = PullProgress(emit, [d.digest for d in manifest.layers])
            progress.announce(self.store.content.exists)
            await transfer.fetch_blobs(client, resolved, self.store, progress, report, sources,
                                       inflight=self.inflight)
            with self.lock:
                try:
                    before = self.store.get(str(ref)).manifest_digest if ref.tag else None
                except ImageUnknown:
                    before = None
                image = transfer.record(self.store, resolved)
        finally:
            with self.lock:
                self.store.release_content(holder)
        emit(status(f"Digest: {resolved.index_digest or resolved.digest}"))
        return image, bool(before != image.manifest_digest or report.sent)

    def push(self, name: str, tag: str, auth: RegistryAuth | None, emit: Emit,
             insecure: bool = False) -> None:
        """`POST /images/{name}/push`: send one tag, or every tag of the repository."""
        ref = refs.parse(name)
        if ref.digest:
            raise InvalidArgument(f"cannot push a digest reference: {name}")
        if tag:
            ref = ref.with_tag(tag)
        with self.lock:
            if ref.tag:
                wanted = [str(ref)] if str(ref) in self._all_tags() else []
            else:
                wanted = sorted(t for t in self._all_tags()
                                if refs.parse(t).repository == ref.repository)
        if not wanted:
            raise NotTaggedLocally(ref.familiar_repository)
        emit(status(f"The push refers to repository [{ref.repository}]"))
        asyncio.run(self._push(wanted, auth, emit, insecure))

    def _all_tags(self) -> set[str]:
        return {t for image in self.store.list() for t in image.tags}

    async def _push(self, names: list[str], auth: RegistryAuth | None, emit: Emit,
                    insecure: bool = False) -> None:
        for name in names:
            ref = refs.parse_tagged(name)
            with self.lock:
                image = self.store.get(name)
                manifest = self.store.manifest(image)
                diff_ids = self.store.config(image).diff_ids
                size = len(self.store.manifest_bytes(image))
            progress = PushProgress(emit, {d.digest: diff for d, diff
                                           in zip(manifest.layers, diff_ids, strict=True)})
            progress.announce()
            try:
                report = await transfer.push(self.store, name, progress=progress,
                                             auth=auth.pair() if auth else None,
                                             insecure=insecure)
            except RemoteError as exc:
                raise RegistryFailure(exc) from None
            emit(status(f"{ref.tag}: digest: {report.digest} size: {size}"))
            emit({"progressDetail": {}, "aux": {"Tag": ref.tag, "Digest": report.digest,
                                               "Size": size}})
            self._event("push", ref.familiar(), ref.familiar(), image)

    # -- names --

    def tag(self, source: str, repo: str, tag: str) -> Image:
        """`POST /images/{name}/tag?repo=&tag=` (201): another name for an image."""
        if not repo:
            raise InvalidArgument("repository name must have at least one component")
        try:
            target = refs.parse_tagged(f"{repo}:{tag}" if tag else repo)
        except InvalidArgument as exc:
            raise InvalidArgument(f"invalid reference format: {exc}") from None
        with self.lock:
            image = self.get(source)
            image = self.store.tag(image.id, str(target))
        self._event("tag", image.id, target.familiar(), image)
        return image

    def remove(self, name: str, force: bool = False, noprune: bool = False) -> list[RemovedItem]:
        """`DELETE /images/{name}` with dockerd's rules (daemon/images/image_delete.go).

        A name is untagged; the image goes with its last name unless a container uses it.
        An id deletes the image when at most one name is left (more need `force`). A
        running container's image is never deleted (`cannot be forced`); a stopped one's
        only with `force`, and then its names go but the content stays while the container
        needs it. `noprune` keeps untagged parents in Docker; portside images have no
        parent chain, so there is nothing more to keep.
        """
        del noprune
        with self.lock:
            image = self.get(name)
            holders = self.store.holders(image)
            running = [h for h in holders if self.holder_running(h)]
            stopped = [h for h in holders if h not in running]
            out: list[RemovedItem] = []
            by_id = self.store.looks_like_id(name, image)
            quiet = False
            if not by_id:
                ref = refs.parse(name).with_default_tag()
                if not force and len(image.tags) <= 1 and holders:
                    raise Conflict(
                        f'conflict: unable to remove repository reference "{name}" (must force)'
                        f" - container {holders[0][:12]} is using its referenced image"
                        f" {image.short_id}")
                if not ref.digest:
                    self.store.untag(str(ref))
                    out.append(("Untagged", ref.familiar()))
                    self._event("untag", image.id, image.id, image)
                if len(image.tags) > 1:
                    return out
                quiet = True
            conflict = self._delete_conflict(image, running, stopped, force, by_id)
            if conflict is not None:
                if quiet:
                    return out
                raise conflict
            if holders:  # forced past stopped containers: they still need the content
                for tag in self.store.get_by_manifest(image.manifest_digest).tags:
                    self.store.untag(tag)
                    out.append(("Untagged", refs.parse(tag).familiar()))
                    self._event("untag", image.id, image.id, image)
                return out
            for tag in self.store.forget(image):  # every manifest of this config goes
                out.append(("Untagged", refs.parse(tag).familiar()))
                self._event("untag", image.id, image.id, image)  # blobs stay until the sweep
            self._event("delete", image.id, image.id, image)
            out.append(("Deleted", image.id))
            self.store.collect_garbage(wait=False)  # an import under way may need our lock
        return out

    @staticmethod
    def _delete_conflict(image: Image, running: list[str], stopped: list[str], force: bool,
                         by_id: bool) -> Conflict | None:
        short = image.short_id
        if running:
            return Conflict(f"conflict: unable to delete {short} (cannot be forced) - image is"
                            f" being used by running container {running[0][:12]}")
        if force:
            return None
        if stopped:
            return Conflict(f"conflict: unable to delete {short} (must be forced) - image is"
                            f" being used by stopped container {stopped[0][:12]}")
        if by_id and len(image.tags) > 1:
            return Conflict(f"conflict: unable to delete {short} (must be forced) - image is"
                            " referenced in multiple repositories")
        return None

    def prune(self, filters: PruneFilters) -> PruneReport:
        """`POST /images/prune`: images no container uses (only untagged ones by default)."""
        report = PruneReport()
        with self.lock:
            for image in self.store.list():
                if self.store.holders(image) or (filters.dangling_only and image.tags):
                    continue
                config = self.store.config(image)
                created = parse_time(config.created)
                if filters.until is not None and (created is None or created >= filters.until):
                    continue
                labels = config.config.get("Labels") or {}
                if not all(label_matches(labels, spec) for spec in filters.labels):
                    continue
                if any(label_matches(labels, spec) for spec in filters.not_labels):
                    continue
                for tag in self.store.forget(image):
                    report.removed.append(("Untagged", refs.parse(tag).familiar()))
                    self._event("untag", image.id, image.id, image)
                report.removed.append(("Deleted", image.id))
                self._event("delete", image.id, image.id)
            report.reclaimed = self.store.collect_garbage(wait=False)
        return report

    # -- archives --

    def load(self, source: IO[bytes]) -> list[Image]:
        """`POST /images/load`: every image of a docker-archive or OCI archive stream."""
        from portside.store import archive

        with self.lock:
            images = archive.load(self.store, source, "the uploaded archive")
        for image in images:
            self._event("load", image.id, image.id, image)
        return images

    def save(self, names: list[str], out: IO[bytes], format: str = "oci") -> None:
        """`GET /images/get`: the named images as one archive (an OCI layout that is also a
        docker archive, as Docker 25+ writes), streamed to `out`."""
        from portside.store import archive
        from portside.store.archive_save import select

        try:  # a 404 before the first byte is written
            with self.lock:
                images = {s.image.id: s.image for s in select(self.store, names)}
        except ImageUnknown as exc:
            raise NoSuchImage(exc.reference) from None
        archive.save(self.store, names, out, format)
        for image in images.values():
            self._event("save", image.id, image.id, image)

    def import_tarball(self, source: IO[bytes], repo: str = "", tag: str = "",
                       message: str = "", changes: list[str] | None = None) -> Image:
        """`POST /images/create?fromSrc=-`: a root filesystem tarball as a one-layer image."""
        from portside.engine.imageimport import import_layer

        target = None
        if repo:
            target = str(refs.parse_tagged(f"{repo}:{tag}" if tag else repo))
        with self.lock:
            image = import_layer(self.store, source, target, message, changes or [])
        self._event("import", image.id, image.id, image)
        return image

    # -- history --

    def history(self, name: str) -> list[HistoryEntry]:
        """`GET /images/{name}/history`: newest first; only the top entry has the image id."""
        from portside.store.describe import history as rows_of

        with self.lock:
            image = self.get(name)
            rows = rows_of(self.store, image)
        tags = [refs.parse(t).familiar() for t in image.tags]
        return [HistoryEntry(str(r.get("Id") or "<missing>"),
                             int(parse_time(str(r["Created"])) or 0), str(r["CreatedBy"]),
                             (tags or None) if i == 0 else None, int(r["Size"]),
                             str(r["Comment"]))
                for i, r in enumerate(rows)]


def _not_found(ref: refs.Reference, exc: RemoteError) -> PullNotFound | RegistryFailure:
    """dockerd's translation of a registry's answer to a pull (distribution/errors.go)."""
    if exc.code in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN", "DENIED", "UNAUTHORIZED"):
        return PullNotFound(ref, exc)
    return RegistryFailure(exc)
