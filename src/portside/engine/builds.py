"""Builds in the daemon: a context stream in, portside's builder, dockerd's classic messages out.

`POST /build` hands `Builds.run` the request body (a tar of the context: plain, gzip,
bzip2, xz or zstd) and the options it parsed. The context is unpacked by the store's layer
unpacker (one pass, every entry created relative to directory descriptors opened with
O_NOFOLLOW; `..`, absolute names, links climbing out, device nodes and archives over the
size limit are refused) into a directory under the daemon's root, which goes when the build
ends, however it ends. The build uses the engine's own image store, every metadata call under
the engine's image lock (`SharedImageStore`), so the daemon stays the one holder of the store
while RUN steps run without blocking `docker run`. Progress comes back as the JSON messages of
dockerd's classic builder (`ClassicOutput`): `Step 2/5 : RUN make`, ` ---> Using cache`,
` ---> <id>`, the RUN output, `{"aux":{"ID":...}}`, `Successfully built`/`tagged`.
"""

from __future__ import annotations

import builtins
import bz2
import contextlib
import lzma
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from portside.build import dockerignore
from portside.build.builder import BuildOptions, build
from portside.build.cache import CACHE_HOLDER, BuildCache
from portside.build.errors import BuildError
from portside.build.output import Progress
from portside.errors import InvalidArgument, PortsideError, UnsafeLayer
from portside.oci import reference as refs
from portside.oci.model import Descriptor
from portside.store.images import Image, ImageStore, RemovalReport
from portside.store.snapshots import SnapshotStore
from portside.store.unpack import LayerError, UnpackPolicy, parse_size, unpack

if TYPE_CHECKING:
    from portside.engine.containers import Engine

Message = dict[str, Any]
Emit = Callable[[Message], None]

CONTEXT_PREFIX = "context-"
_BZIP2_MAGIC = b"BZh"
_XZ_MAGIC = b"\xfd7zXZ\x00"


class ContextError(InvalidArgument):
    """The build context a client sent cannot be used (not a tar, or a hostile one)."""


class BuildCancelled(PortsideError):
    """The client went away while its build ran: the build stops at its next message."""


# -- the request --------------------------------------------------------------------------


@dataclass
class BuildRequest:
    """What `POST /build` asks for, in the builder's terms (the handler maps the query)."""

    dockerfile: str = ""  # a path inside the context; "" finds Dockerfile or Containerfile
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False
    pull: bool = False
    cache_from: list[str] = field(default_factory=list)
    network: str = "default"


@dataclass(frozen=True)
class BuildReport:
    image: Image
    tags: list[str]  # the names this build gave it, normalised (`docker.io/library/app:1`)


# -- the context --------------------------------------------------------------------------


class _Peeked:
    """A reader whose first bytes were read ahead (to recognise the compression)."""

    def __init__(self, head: bytes, source: IO[bytes]) -> None:
        self._head = head
        self._source = source

    def read(self, n: int = -1) -> bytes:
        if self._head:
            head, self._head = (
                (self._head, b"") if n < 0 or n >= len(self._head) else
                (self._head[:n], self._head[n:])
            )
            return head
        return self._source.read(n)

    def readable(self) -> bool:
        return True


def _head(source: IO[bytes], n: int) -> bytes:
    """Up to n first bytes (a socket hands out what has arrived: read until n or the end)."""
    out = b""
    while len(out) < n:
        chunk = source.read(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def _decompressed(source: IO[bytes]) -> IO[bytes]:
    """bzip2 and xz undone here; plain, gzip and zstd are the unpacker's own."""
    head = _head(source, len(_XZ_MAGIC))
    peeked: Any = _Peeked(head, source)
    if head.startswith(_BZIP2_MAGIC):
        return bz2.BZ2File(peeked)
    if head.startswith(_XZ_MAGIC):
        return lzma.LZMAFile(peeked)
    reader: IO[bytes] = peeked
    return reader


def context_policy() -> UnpackPolicy:
    """The layer limits (PORTSIDE_MAX_CONTEXT_BYTES overrides the size), no device nodes,
    no whiteouts, and an archive may end without its end-of-archive marker, as Go's tar
    reader allows (the docker client's context for `-f -` ends so)."""
    overrides: dict[str, Any] = {
        "allow_devices": False,
        "eof_ends_archive": True,
        "whiteouts": False,  # a context's `.wh.x` is a file named so, not a deletion
    }
    limit = os.environ.get("PORTSIDE_MAX_CONTEXT_BYTES")
    if limit:
        overrides["max_bytes"] = parse_size(limit, "PORTSIDE_MAX_CONTEXT_BYTES")
    return UnpackPolicy.from_env(**overrides)


def unpack_context(source: IO[bytes], target: Path, policy: UnpackPolicy | None = None) -> None:
    """Unpack a client's context tar into `target` (missing); ContextError when unusable,
    with nothing left at `target`."""
    try:
        unpack(_decompressed(source), target, layer="build context", policy=policy or context_policy())
    except UnsafeLayer as exc:
        raise ContextError(f"build context: refusing entry {exc.entry!r}: {exc.reason}") from None
    except LayerError as exc:
        where = f" (entry {exc.entry!r})" if exc.entry else ""
        raise ContextError(f"build context is not a valid tar archive{where}: {exc.reason}") from None
    except (lzma.LZMAError, EOFError, OSError) as exc:
        # bz2 says "Invalid data stream" with an OSError that has no errno; a real I/O
        # failure (a full disk, the client gone) is not the client's bad data.
        if isinstance(exc, OSError) and (exc.errno is not None or isinstance(exc, ConnectionError)):
            raise
        shutil.rmtree(target, ignore_errors=True)
        raise ContextError(f"build context: bad compressed data ({exc})") from None


def dockerfile_in(context: Path, name: str) -> Path | None:
    """The Dockerfile `name` (a path inside the context, as Docker's `dockerfile` parameter
    is), never one outside it; None lets the builder look for Dockerfile or Containerfile."""
    if not name:
        return None
    rel = dockerignore.clean(name)
    path = context / rel
    inside = Path(os.path.realpath(path)).is_relative_to(context.resolve())
    if not rel or not inside or not path.is_file():
        raise InvalidArgument(f"Cannot locate specified Dockerfile: {name}")
    return path


# -- the store, shared with the engine ----------------------------------------------------


class SharedImageStore(ImageStore):
    """The engine's image store as a build uses it from its own thread.

    Same SQLite connection, content store and snapshots as the engine's (no second store is
    opened); every call that touches the metadata takes the engine's image lock, the lock
    the daemon's other image work takes, so statements of two threads never interleave in
    one transaction, and the lock is held per call, not for the build: RUN steps and
    `docker run` go on side by side.
    """

    def __init__(self, store: ImageStore, lock: threading.RLock) -> None:
        # Deliberately not ImageStore.__init__: it would open a second connection.
        self._store = store
        self._guard = lock
        self.root = store.root
        self.content = store.content
        self.db = store.db
        self._shared_snapshots: SharedSnapshots | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)  # anything else the engine's store has

    @property
    def snapshots(self) -> SnapshotStore:
        if self._shared_snapshots is None:
            with self._guard:
                self._shared_snapshots = SharedSnapshots(self._store.snapshots, self._guard)
        return self._shared_snapshots

    def add_image(
        self,
        manifest_bytes: bytes,
        tags: Iterable[str] = (),
        index_digest: str | None = None,
        media_type: str | None = None,
    ) -> Image:
        with self._guard:
            return super().add_image(manifest_bytes, tags, index_digest, media_type)

    def get_by_manifest(self, manifest_digest: str) -> Image:
        with self._guard:
            return super().get_by_manifest(manifest_digest)

    def list(self) -> list[Image]:
        with self._guard:
            return super().list()

    def get(self, name: str) -> Image:
        with self._guard:
            return super().get(name)

    def tag(self, source: str, target: str) -> Image:
        with self._guard:
            return super().tag(source, target)

    def lease(self, holder: str, image: Image) -> None:
        with self._guard:
            super().lease(holder, image)

    def release(self, holder: str) -> None:
        with self._guard:
            super().release(holder)

    def lease_content(self, holder: str, digest: str) -> None:
        with self._guard:
            super().lease_content(holder, digest)

    def release_content(self, holder: str) -> None:
        with self._guard:
            super().release_content(holder)

    def holders(self, image: Image) -> builtins.list[str]:
        with self._guard:
            return super().holders(image)

    def remove(self, name: str, force: bool = False) -> RemovalReport:
        with self._guard:
            return super().remove(name, force)

    def prune(self, all_unused: bool = False) -> RemovalReport:
        with self._guard:
            return super().prune(all_unused)

    def collect_garbage(self) -> int:
        with self._guard:
            return super().collect_garbage()


class SharedSnapshots(SnapshotStore):
    """The engine's snapshot store, each call under the engine's image lock."""

    def __init__(self, snapshots: SnapshotStore, lock: threading.RLock) -> None:
        # Not SnapshotStore.__init__: the same directories and connection, nothing new.
        self._inner = snapshots
        self._guard = lock
        self.root = snapshots.root
        self.db = snapshots.db
        self.content = snapshots.content
        self.policy = snapshots.policy
        self.sync = snapshots.sync

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def prepare(self, layer: Descriptor, diff_id: str) -> Path:
        with self._guard:
            return super().prepare(layer, diff_id)

    def ids(self) -> list[str]:
        with self._guard:
            return super().ids()

    def total_size(self) -> int:
        with self._guard:
            return super().total_size()

    def remove(self, diff_id: str) -> int:
        with self._guard:
            return super().remove(diff_id)


# -- the classic message stream -----------------------------------------------------------


def short(ident: str) -> str:
    return ident.removeprefix("sha256:")[:12]


def stream(text: str) -> Message:
    return {"stream": text}


def error_message(exc: BaseException) -> Message:
    """The stream's last message when a build fails: Docker's errorDetail, whose code the
    docker client exits with (a failed RUN's exit code, else 1)."""
    text = str(exc) if isinstance(exc, PortsideError) else f"internal error: {exc}"
    code = exc.status if isinstance(exc, BuildError) and exc.status is not None else 1
    return {"errorDetail": {"code": code, "message": text}, "error": text}


class ClassicOutput(Progress):
    """Build progress as dockerd's classic builder writes it, one message per `emit`.

    Steps are numbered across the stages built (`Step 3/7 : COPY . /app`); each is followed
    by ` ---> Using cache` when the cache had it, and by ` ---> <id>`: what the step made,
    named by the first 12 hex of its cache key (portside keeps no intermediate images), or
    by the base image's id after a FROM. The last step's line names the image itself.
    """

    def __init__(self, emit: Emit, cancelled: Callable[[], bool] = lambda: False) -> None:
        super().__init__("quiet")  # the base keeps the counts the builder's result reads
        self._emit = emit
        self._cancelled = cancelled
        self._total = 0
        self._number = 0
        self._announced = False  # the current step's line went out already (a RUN)
        self._pending: str | None = None  # the ` ---> id` of the step before

    def plan(self, steps: int) -> None:
        self._total = steps

    def cancelled(self) -> bool:
        return self._cancelled()

    def _flush(self) -> None:
        if self._pending is not None:
            self._emit(stream(self._pending))
            self._pending = None

    def _announce(self, text: str) -> None:
        self._flush()
        self._number += 1
        self._total = max(self._total, self._number)  # ONBUILD triggers add steps
        self._emit(stream(f"Step {self._number}/{self._total} : {text}\n"))

    def step(
        self,
        label: str,
        text: str,
        status: str,
        seconds: float,
        *,
        ident: str = "",
        written: str = "",
    ) -> None:
        super().step(label, text, status, seconds, ident=ident, written=written)
        if not self._announced:
            self._announce(written or text)
        self._announced = False
        if status == "CACHED":
            self._emit(stream(" ---> Using cache\n"))
        self._pending = f" ---> {short(ident)}\n" if ident else None

    def running(self, label: str, text: str) -> None:
        self._announce(text)
        self._announced = True

    def note(self, text: str) -> None:
        self._flush()
        self._emit(stream(text + "\n"))

    def output(self, text: str) -> None:
        self._emit(stream(text + "\n"))

    def failed(self) -> None:
        """A step failed: the step before it still gets its ` ---> id` line."""
        with contextlib.suppress(BuildCancelled):
            self._flush()

    def finish(self, image: Image, tags: list[str]) -> None:
        """The end of a successful build: the image's id, then its names."""
        self._pending = None
        self._emit(stream(f" ---> {image.short_id}\n"))
        self._emit({"aux": {"ID": image.id}})
        self._emit(stream(f"Successfully built {image.short_id}\n"))
        for tag in tags:
            self._emit(stream(f"Successfully tagged {refs.parse(tag).familiar()}\n"))


# -- builds -------------------------------------------------------------------------------


class Builds:
    """The daemon's builds: run them, prune their cache.

    Pruning collects garbage, which waits for every import to finish, and a build is one
    import from start to end; so a prune first waits for running builds to end and keeps
    new ones waiting until it is done, rather than holding the image lock while it waits.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._cond = threading.Condition()
        self._active = 0
        self._pruning = False
        self._closing = threading.Event()
        for stale in self.scratch.glob(CONTEXT_PREFIX + "*"):  # a crash's leftovers
            shutil.rmtree(stale, ignore_errors=True)

    @property
    def scratch(self) -> Path:
        path = self.engine.root / "tmp"
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    @contextlib.contextmanager
    def _building(self) -> Any:
        with self._cond:
            while self._pruning:
                self._cond.wait()
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def close(self, timeout: float = 30) -> None:
        """The daemon is stopping: every build stops (a RUN step's container is killed) and
        cleans up before the process goes, rather than leaving containers and mounts."""
        self._closing.set()
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._active and time.monotonic() < deadline:
                self._cond.wait(max(0.0, deadline - time.monotonic()))

    def run(
        self,
        request: BuildRequest,
        source: IO[bytes],
        emit: Emit,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> BuildReport:
        """Unpack `source`, build, name the image; blocking (the handler runs it in a thread).

        Messages go to `emit` as they come; errors are raised (the handler reports them).
        `cancelled` says when the client has gone: the build stops at its next message or
        within a RUN step's polling interval."""
        tags = [str(refs.parse_tagged(t)) for t in request.tags]  # bad names fail first

        def stopping() -> bool:
            return self._closing.is_set() or cancelled()

        def relay(message: Message) -> None:
            if stopping():
                raise BuildCancelled("the build was cancelled")
            emit(message)

        output = ClassicOutput(relay, stopping)
        with self._building():
            top = Path(tempfile.mkdtemp(dir=self.scratch, prefix=CONTEXT_PREFIX))
            try:
                context = top / "context"
                unpack_context(source, context)
                dockerfile = dockerfile_in(context, request.dockerfile)
                options = BuildOptions(
                    context=context,
                    dockerfile=dockerfile,
                    dockerfile_name=dockerignore.clean(request.dockerfile) or None,
                    tags=tags,
                    build_args=dict(request.build_args),
                    target=request.target or None,
                    no_cache=request.no_cache,
                    labels=dict(request.labels),
                    pull=request.pull,
                    cache_from=list(request.cache_from),
                    network=request.network,
                    git_labels=False,
                    remember_hashes=False,
                )
                store = SharedImageStore(self.engine.images, self.engine.image_lock)
                try:
                    result = build(store, options, output)
                except BaseException:
                    output.failed()
                    raise
            finally:
                shutil.rmtree(top, ignore_errors=True)
        image = result.image
        for tag in tags:
            self.engine.events.publish(
                "image", "tag", image.id, {"name": refs.parse(tag).familiar()}
            )
        output.finish(image, tags)
        return BuildReport(image, tags)

    def prune(self) -> Message:
        """`docker builder prune`: every cached step, the layers kept only for them, and the
        RUN cache mounts; Docker's report (CachesDeleted, SpaceReclaimed)."""
        with self._cond:
            while self._pruning:
                self._cond.wait()
            self._pruning = True
            while self._active:
                self._cond.wait()
        try:
            root = self.engine.root
            cache = BuildCache(root)
            try:
                deleted = cache.prune_steps()
            finally:
                cache.close()
            mounts = root / "build" / "cache-mounts"
            reclaimed = _tree_size(mounts)
            if mounts.is_dir():
                for entry in mounts.iterdir():
                    deleted.append(f"cache-mount:{entry.name}")
            shutil.rmtree(mounts, ignore_errors=True)
            with self.engine.image_lock:
                self.engine.images.release_content(CACHE_HOLDER)
                reclaimed += self.engine.images.collect_garbage()
        finally:
            with self._cond:
                self._pruning = False
                self._cond.notify_all()
        return {"CachesDeleted": deleted or None, "SpaceReclaimed": reclaimed}


def _tree_size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total
