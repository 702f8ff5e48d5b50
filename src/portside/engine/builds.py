"""Builds in the daemon: a context stream in, portside's builder, dockerd's classic messages out.

`POST /build` hands `Builds.run` the request body and the options it parsed. The context is
unpacked (`buildcontext`: safely, it is hostile input) into a directory under the daemon's
root, which goes when the build ends, however it ends. The build uses the engine's own
image store under the engine's image lock (`sharedstore`), so the daemon stays the one
holder of the store while RUN steps run without blocking `docker run`. Progress comes back
as the JSON messages of dockerd's classic builder (`ClassicOutput`): `Step 2/5 : RUN make`,
` ---> Using cache`, ` ---> <id>`, the RUN output, `{"aux":{"ID":...}}`,
`Successfully built`/`tagged`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from portside.build import dockerignore
from portside.build.builder import BuildOptions, build
from portside.build.cache import CACHE_HOLDER, BuildCache
from portside.build.errors import BuildError
from portside.build.output import Progress
from portside.engine import imagepolicy
from portside.engine.buildcontext import dockerfile_in, unpack_context
from portside.engine.sharedstore import SharedImageStore
from portside.errors import InvalidArgument, PortsideError, to_wire
from portside.oci import reference as refs
from portside.oci.model import host_platform
from portside.store.images import Image

if TYPE_CHECKING:
    from portside.engine.containers import Engine

Message = dict[str, Any]
Emit = Callable[[Message], None]

CONTEXT_PREFIX = "context-"


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


# -- the classic message stream -----------------------------------------------------------


def short(ident: str) -> str:
    return ident.removeprefix("sha256:")[:12]


def stream(text: str) -> Message:
    return {"stream": text}


def error_message(exc: BaseException) -> Message:
    """The stream's last message when a build fails: Docker's errorDetail, whose code the
    docker client exits with (a failed RUN's exit code, else 1), and beside it the error's
    class and facts (`errors.to_wire`), which portside's client raises again."""
    code = exc.status if isinstance(exc, BuildError) and exc.status is not None else 1
    if not isinstance(exc, PortsideError):
        text = f"internal error: {exc}"
        return {"errorDetail": {"code": code, "message": text}, "error": text}
    wire = to_wire(exc)
    text = str(wire.pop("message"))
    return {"errorDetail": {"code": code, "message": text}, "error": text, **wire}


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
                    admit_base=None if self.engine.policy is None
                    else imagepolicy.blocking(self.engine.policy),
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
                # Builds are done, but a pull may hold the import lock and need this lock.
                reclaimed += self.engine.images.collect_garbage(wait=False)
        finally:
            with self._cond:
                self._pruning = False
                self._cond.notify_all()
        return {"CachesDeleted": deleted or None, "SpaceReclaimed": reclaimed}


_NETWORKS = {"": "default", "default": "default", "host": "host", "none": "none"}
_BUILDS: weakref.WeakKeyDictionary[Engine, Builds] = weakref.WeakKeyDictionary()


def check_platform(platform: str) -> None:
    """A build's platform, if asked, is the host's: there is no emulation."""
    if platform:
        host = host_platform()
        wanted = platform.lower().split("/")
        if wanted[0] != host.os or (len(wanted) > 1 and wanted[1] != host.architecture):
            raise InvalidArgument(
                f"platform={platform}: this host builds only for {host.os}/{host.architecture}"
                " (no emulation)"
            )


def network_of(mode: str) -> str:
    """The network RUN steps use, from Docker's `networkmode`."""
    if mode not in _NETWORKS:
        raise InvalidArgument(
            f"networkmode={mode}: RUN steps can use the default (host) network, host or none"
        )
    return _NETWORKS[mode]


def builds_of(engine: Engine) -> Builds:
    """The engine's one `Builds` (the daemon's build API and the in-process engine share
    it, so a prune waits for every build of the engine)."""
    builds = _BUILDS.get(engine)
    if builds is None:
        builds = _BUILDS[engine] = Builds(engine)
    return builds


def _tree_size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total
