"""`LocalEngine.images`, `.networks`, `.volumes` and `.system`: those nouns of the engine
interface in-process (see `portside.engine.local`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import IO, Any, cast

from portside.engine import imagedocs, operations
from portside.engine.images import ImageService
from portside.engine.interface import (
    BuildOptions,
    BuildProgress,
    Document,
    EndpointOptions,
    Event,
    EventOptions,
    Filters,
    HistoryEntry,
    ImageSummary,
    ImportOptions,
    NetworkCreate,
    Progress,
    PruneReport,
    PullOptions,
    PullReport,
    PushOptions,
    PushReport,
    Readable,
    RemovedImage,
    VolumeCreate,
)
from portside.engine.localloop import (
    EngineLoop,
    close_of,
    next_of,
    reader,
    registry_auth,
    tagged,
)
from portside.engine.reports import (
    ProgressFeed,
    connect_body,
    event,
    history_entry,
    image_summary,
    network_body,
    prune_report,
    pull_outcome,
    pull_reference,
    push_outcome,
    removed_image,
    split_reference,
    volume_body,
)
from portside.network import operations as netops
from portside.network.manager import NetworkManager


class LocalImages:
    def __init__(self, on: EngineLoop) -> None:
        self.on = on

    @property
    def service(self) -> ImageService:
        return self.on.engine.image_service

    def inspect(self, ref: str) -> Document:
        return cast(Document, imagedocs.inspect(self.service, ref))

    def history(self, ref: str) -> list[HistoryEntry]:
        return [history_entry(h) for h in imagedocs.history(self.service.history(ref))]

    def tag(self, source: str, target: str) -> None:
        self.service.tag(source, *tagged(target))

    def remove(self, ref: str, force: bool = False, prune: bool = True) -> list[RemovedImage]:
        return [removed_image(d) for d in
                imagedocs.removed(self.service.remove(ref, force, not prune))]

    def prune(self, filters: Filters | None = None) -> PruneReport:
        report = self.service.prune(imagedocs.prune_filters(filters or {}))
        return prune_report(imagedocs.prune_report(report), "ImagesDeleted")

    def pull(self, options: PullOptions, progress: Progress) -> PullReport:
        repo, tag = tagged(options.reference)
        reference = pull_reference(repo, tag)
        feed, rest = ProgressFeed(progress), []

        def emit(msg: dict[str, Any]) -> None:
            if (left := feed.feed(msg)) is not None:
                rest.append(left)

        try:
            self.service.pull(reference, registry_auth(options.credentials), emit,
                              options.platform or "", False, options.insecure)
        finally:
            progress.close()
        digest, updated = pull_outcome(rest)
        image = self.inspect(f"{repo}@{tag}" if tag.startswith("sha256:") else f"{repo}:{tag}")
        return PullReport(image_id=str(image["Id"]), digest=digest, updated=updated)

    def push(self, options: PushOptions, progress: Progress) -> PushReport:
        repo, tag = split_reference(options.reference)
        feed, rest = ProgressFeed(progress), []

        def emit(msg: dict[str, Any]) -> None:
            if (left := feed.feed(msg)) is not None:
                rest.append(left)

        try:
            self.service.push(repo, tag, registry_auth(options.credentials), emit, options.insecure)
        finally:
            progress.close()
        digest, size = push_outcome(rest)
        return PushReport(reference=options.reference, digest=digest, size=size)

    def save(self, refs_: list[str], out: IO[bytes], format: str = "oci") -> None:
        imagedocs.check_save(refs_, format)
        self.service.save(refs_, out, format)

    def load(self, archive: Readable) -> list[str]:
        return [name for _, name in imagedocs.loaded(self.service.load(reader(archive)))]

    def import_(self, tar: Readable, options: ImportOptions) -> str:
        repo, tag = tagged(options.reference) if options.reference else ("", "")
        image = self.service.import_tarball(reader(tar), repo, tag, options.message,
                                            list(options.changes))
        return image.id

    def build(self, context: Readable, options: BuildOptions,
              log: Callable[[str], None], steps: BuildProgress | None = None) -> str:
        from portside.build.gitinfo import GitInfo
        from portside.engine import buildsteps
        from portside.engine.builds import BuildRequest, builds_of, check_platform, network_of

        check_platform(options.platform)
        git = options.git
        request = BuildRequest(
            dockerfile=options.dockerfile, tags=[t for t in options.tags if t],
            build_args=dict(options.build_args), target=options.target or None,
            labels=dict(options.labels), no_cache=options.no_cache, pull=options.pull,
            cache_from=list(options.cache_from), network=network_of(options.network_mode),
            secrets=dict(options.secrets), push=options.push,
            reproducible=options.reproducible, epoch=options.epoch,
            git=GitInfo(git.revision, git.source, git.dirty, git.commit_time) if git else None,
            steps=steps is not None, dockerfile_name=options.dockerfile_name)

        def emit(msg: dict[str, Any]) -> None:
            if steps is not None and buildsteps.replay(msg, steps):
                return
            if msg.get("stream") and not options.quiet:
                log(str(msg["stream"]))

        return builds_of(self.on.engine).run(request, reader(context), emit).image.id

    def list(self, all: bool = False, filters: Filters | None = None) -> list[ImageSummary]:
        return [image_summary(d) for d in imagedocs.summaries(self.service, filters or {})]


class LocalNetworks:
    def __init__(self, on: EngineLoop) -> None:
        self.on = on

    @property
    def manager(self) -> NetworkManager:
        manager: NetworkManager = self.on.engine.networks.manager
        return manager

    def _lookup(self, ref: str) -> netops.ContainerRef:
        return operations.container_ref(self.on.engine, ref)

    def create(self, options: NetworkCreate) -> str:
        return netops.create(self.manager, network_body(options)).id

    def inspect(self, ref: str) -> Document:
        return cast(Document, netops.inspect_doc(self.manager, ref))

    def remove(self, ref: str) -> None:
        netops.remove(self.manager, ref)

    def prune(self, filters: Filters | None = None) -> PruneReport:
        return prune_report({"NetworksDeleted": netops.prune(self.manager, filters or {})},
                            "NetworksDeleted")

    def connect(self, network: str, container: str,
                endpoint: EndpointOptions | None = None) -> None:
        netops.connect(self.manager, self._lookup, network, connect_body(container, endpoint))

    def disconnect(self, network: str, container: str, force: bool = False) -> None:
        netops.disconnect(self.manager, self._lookup, network,
                          {"Container": container, "Force": force})

    def list(self, filters: Filters | None = None) -> list[Document]:
        return cast(list[Document], netops.list_docs(self.manager, filters or {}))


class LocalVolumes:
    def __init__(self, on: EngineLoop) -> None:
        self.on = on
        self.engine = on.engine

    def create(self, options: VolumeCreate) -> Document:
        return cast(Document, self.on.call(operations.volume_create, self.engine,
                                           volume_body(options)))

    def inspect(self, name: str) -> Document:
        return cast(Document, self.on.call(self.engine.volumes.get, name))

    def remove(self, name: str, force: bool = False) -> None:
        self.on.call(operations.volume_remove, self.engine, name, force)

    def prune(self, filters: Filters | None = None) -> PruneReport:
        return prune_report(self.on.call(operations.volume_prune, self.engine, filters or {}),
                            "VolumesDeleted")

    def list(self, filters: Filters | None = None) -> list[Document]:
        return cast(list[Document], self.on.call(operations.volume_list, self.engine,
                                                 filters or {}))


class LocalSystem:
    def __init__(self, on: EngineLoop) -> None:
        self.on = on
        self.engine = on.engine

    def ping(self) -> bool:
        """Whether the engine's loop runs (what answers the daemon's `_ping`)."""
        return self.on.loop.is_running()

    def version(self) -> Document:
        from portside.engine.hostinfo import version_doc

        return cast(Document, version_doc(self.engine))

    def info(self) -> Document:
        from portside.engine.hostinfo import info_doc

        return cast(Document, info_doc(self.engine))

    def df(self) -> Document:
        from portside.engine import disk

        service = self.engine.image_service
        return cast(Document, disk.system_df(
            self.engine, lambda image: imagedocs.summary(service, image), set()))

    def prune_build_cache(self) -> PruneReport:
        from portside.engine.builds import builds_of

        return prune_report(builds_of(self.engine).prune(), "CachesDeleted")

    def events(self, options: EventOptions) -> Iterator[Event]:
        watch = self.on.call(operations.EventWatch, self.engine, options.since or None,
                             options.until or None,
                             str(options.after_revision) if options.after_revision else None,
                             dict(options.filters))
        stream = watch.stream()

        def read() -> Iterator[Event]:
            try:
                while True:
                    try:
                        doc = self.on.run(next_of(stream))
                    except StopAsyncIteration:
                        return
                    yield event(doc)
            finally:
                with contextlib.suppress(RuntimeError):  # the loop is gone already
                    self.on.run(close_of(stream))
                    self.on.call(watch.close)

        return read()
