"""The engine interface: what a caller can ask of one engine, whoever runs it.

The CLI and compose today, the orchestrator and the node agent next, talk to an engine
only through `EngineAPI`: its nouns (`containers`, `images`, `networks`, `volumes`,
`system`), each a small Protocol, take plain dataclass options and give dataclass reports.
Two implementations exist (podman's abi/tunnel split): `portside.engine.local.LocalEngine`
in the caller's process, and `portside.client.remote.RemoteEngine` over the daemon's
socket. Which one a caller holds is a detail of how it was built.

Documents that Docker defines field by field and clients print whole (`inspect`, the
create body) are `Document`s: JSON objects with Docker's field names. Everything a caller
reads field by field is a dataclass.

Blocking, synchronous calls: the callers are commands and worker threads; the engine
behind an implementation may be asynchronous.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Protocol, TypeAlias

JSONValue: TypeAlias = "str | int | float | bool | None | list[JSONValue] | dict[str, JSONValue]"
Document: TypeAlias = "dict[str, JSONValue]"
Filters: TypeAlias = "dict[str, list[str]]"


def at(doc: Document, *path: str) -> JSONValue:
    """The value at `path` inside a document (`at(info, "Config", "Tty")`); None where a key
    is missing or a level is not an object. The `*_at` readers below narrow it."""
    value: JSONValue = doc
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def doc_at(doc: Document, *path: str) -> Document:
    """The object at `path`; an empty one when there is none."""
    value = at(doc, *path)
    return value if isinstance(value, dict) else {}


def list_at(doc: Document, *path: str) -> list[JSONValue]:
    value = at(doc, *path)
    return value if isinstance(value, list) else []


def str_at(doc: Document, *path: str) -> str:
    """The string at `path`; "" when it is absent or not a string."""
    value = at(doc, *path)
    return value if isinstance(value, str) else ""


def number_at(doc: Document, *path: str) -> int | float:
    """The number at `path` as JSON gave it (int or float); 0 when absent or not a number."""
    value = at(doc, *path)
    return value if isinstance(value, int | float) and not isinstance(value, bool) else 0


def int_at(doc: Document, *path: str) -> int:
    return int(number_at(doc, *path))


def bool_at(doc: Document, *path: str) -> bool:
    """Whether the value at `path` is set (JSON truthiness: true, non-zero, non-empty)."""
    return bool(at(doc, *path))


class Readable(Protocol):
    """What an upload reads from (a file, a pipe, stdin)."""

    def read(self, n: int = -1, /) -> bytes: ...


class Progress(Protocol):
    """Where long work reports per-item progress (a layer pulled or pushed)."""

    def start(self, key: str, total: int) -> None: ...
    def advance(self, key: str, amount: int) -> None: ...
    def done(self, key: str, status: str) -> None: ...
    def close(self) -> None: ...


# -- images --

@dataclass(frozen=True)
class Credentials:
    """Registry credentials for one pull or push (Docker's X-Registry-Auth)."""

    username: str = ""
    password: str = ""
    identity_token: str = ""
    server: str = ""


@dataclass(frozen=True)
class PullOptions:
    reference: str
    platform: str | None = None
    credentials: Credentials | None = None
    insecure: bool = False  # plain http or unverified https to this registry


@dataclass(frozen=True)
class PullReport:
    image_id: str
    digest: str
    updated: bool  # anything new came into the store


@dataclass(frozen=True)
class PushOptions:
    reference: str
    credentials: Credentials | None = None
    insecure: bool = False


@dataclass(frozen=True)
class PushReport:
    reference: str
    digest: str
    size: int


@dataclass(frozen=True)
class ImageSummary:
    id: str
    tags: list[str]
    digests: list[str]
    created: int  # seconds since the epoch
    size: int
    labels: dict[str, str] = field(default_factory=dict)
    containers: int = -1  # -1: not counted

    @property
    def short_id(self) -> str:
        return self.id.removeprefix("sha256:")[:12]


@dataclass(frozen=True)
class HistoryEntry:
    id: str  # the image ID for the step that made an image, else "<missing>"
    created: int
    created_by: str
    size: int
    comment: str = ""
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RemovedImage:
    """One line of `rmi`: a tag removed (`untagged`) or an image deleted (`deleted`)."""

    untagged: str = ""
    deleted: str = ""


@dataclass(frozen=True)
class PruneReport:
    deleted: list[str]
    space_reclaimed: int = 0
    untagged: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BuildOptions:
    tags: list[str] = field(default_factory=list)
    dockerfile: str = "Dockerfile"  # a path inside the context
    build_args: dict[str, str] = field(default_factory=dict)
    target: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False
    pull: bool = False
    cache_from: list[str] = field(default_factory=list)
    platform: str = ""
    network_mode: str = ""
    quiet: bool = False
    # portside's own, beyond the classic protocol (`portside build`):
    secrets: dict[str, bytes] = field(default_factory=dict)  # id -> value, never stored
    push: bool = False  # push every tag once built
    reproducible: bool = False  # clamp time stamps (to `epoch`, else the commit time, else 0)
    epoch: int | None = None  # SOURCE_DATE_EPOCH
    git: BuildGit | None = None  # what the client's checkout says, for the image's labels
    dockerfile_name: str = ""  # how messages name the Dockerfile (default: `dockerfile`)


@dataclass(frozen=True)
class BuildGit:
    """The git checkout a context comes from, as the client saw it (the daemon never runs
    git in a context it was sent)."""

    revision: str
    source: str = ""  # the remote's URL without credentials
    dirty: bool = False
    commit_time: int = 0


class BuildProgress(Protocol):
    """portside's step-by-step build progress (`portside.build.output.Progress` is one)."""

    def plan(self, steps: int) -> None: ...
    def step(self, label: str, text: str, status: str, seconds: float, *, ident: str = "",
             written: str = "") -> None: ...
    def running(self, label: str, text: str) -> None: ...
    def note(self, text: str) -> None: ...
    def output(self, text: str) -> None: ...


@dataclass(frozen=True)
class ImportOptions:
    reference: str = ""
    changes: list[str] = field(default_factory=list)
    message: str = ""
    platform: str = ""


class ImagesAPI(Protocol):
    def inspect(self, ref: str) -> Document: ...
    def history(self, ref: str) -> list[HistoryEntry]: ...
    def tag(self, source: str, target: str) -> None: ...
    def remove(self, ref: str, force: bool = False, prune: bool = True) -> list[RemovedImage]: ...
    def prune(self, filters: Filters | None = None) -> PruneReport: ...
    def pull(self, options: PullOptions, progress: Progress) -> PullReport:
        """Fetch an image (only the layers the store lacks)."""
        ...
    def push(self, options: PushOptions, progress: Progress) -> PushReport: ...
    def save(self, refs: list[str], out: IO[bytes], format: str = "oci") -> None:
        """An archive of the images: `oci` (an OCI layout that is also a docker archive, as
        Docker 25+ writes) or `docker` (the legacy docker-archive)."""
        ...
    def load(self, archive: Readable) -> list[str]:
        """Load a docker-archive or OCI archive; returns what was loaded (tags, else IDs)."""
        ...
    def import_(self, tar: Readable, options: ImportOptions) -> str: ...
    def build(self, context: Readable, options: BuildOptions,
              log: Callable[[str], None], steps: BuildProgress | None = None) -> str:
        """Build from a context tar, streaming the build's output lines to `log` (the
        classic builder's), or with `steps` its steps, RUN output and notes to `steps`
        instead; returns the image ID."""
        ...
    def list(self, all: bool = False, filters: Filters | None = None) -> list[ImageSummary]: ...


# -- containers --

@dataclass(frozen=True)
class Port:
    private: int
    protocol: str = "tcp"
    public: int = 0
    ip: str = ""


@dataclass(frozen=True)
class ContainerSummary:
    id: str
    names: list[str]
    image: str
    image_id: str
    command: str
    created: int
    state: str  # created, running, paused, restarting, exited, dead
    status: str  # "Up 3 minutes", "Exited (0) 2 seconds ago"
    labels: dict[str, str] = field(default_factory=dict)
    ports: list[Port] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    size_rw: int | None = None

    @property
    def name(self) -> str:
        return (self.names or ["/?"])[0].lstrip("/")


@dataclass(frozen=True)
class ContainerState:
    """What `inspect` tells of a container's state, as callers read it."""

    status: str
    running: bool
    paused: bool
    exit_code: int
    pid: int = 0
    error: str = ""
    health: str = ""  # starting, healthy, unhealthy; "" without a health check
    oom_killed: bool = False


@dataclass(frozen=True)
class CreateOptions:
    body: Document  # Docker's create body: Image, Cmd, Env, HostConfig, NetworkingConfig...
    name: str = ""


@dataclass(frozen=True)
class Created:
    id: str
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WaitResult:
    status_code: int
    error: str = ""


@dataclass(frozen=True)
class LogOptions:
    follow: bool = False
    stdout: bool = True
    stderr: bool = True
    timestamps: bool = False
    since: str = ""
    until: str = ""
    tail: str = "all"


@dataclass(frozen=True)
class LogChunk:
    stream: int  # 1 stdout, 2 stderr
    data: bytes


@dataclass(frozen=True)
class CommitOptions:
    reference: str = ""
    comment: str = ""
    author: str = ""
    changes: list[str] = field(default_factory=list)
    pause: bool = True


@dataclass(frozen=True)
class Change:
    path: str
    kind: int  # 0 modified, 1 added, 2 deleted (Docker's)


@dataclass(frozen=True)
class Top:
    titles: list[str]
    processes: list[list[str]]


@dataclass(frozen=True)
class PathStat:
    """`X-Docker-Container-Path-Stat`: what a path in a container is."""

    name: str
    size: int
    mode: int
    mtime: str
    link_target: str = ""


@dataclass(frozen=True)
class ExecOptions:
    cmd: list[str]
    tty: bool = False
    stdin: bool = False
    stdout: bool = True  # False (with stderr) for a detached exec, as Docker's client sends
    stderr: bool = True
    env: list[str] = field(default_factory=list)
    workdir: str = ""
    user: str = ""
    privileged: bool = False
    detach_keys: str = ""


@dataclass(frozen=True)
class ExecState:
    running: bool
    exit_code: int | None
    pid: int = 0


class Stream(Protocol):
    """A connection carrying a container's stdio (attach, exec): Docker's multiplexed
    frames unless the container has a TTY. A socket is one."""

    def recv(self, n: int) -> bytes: ...
    def sendall(self, data: bytes) -> None: ...
    def shutdown(self, how: int) -> None: ...
    def fileno(self) -> int: ...
    def close(self) -> None: ...


class ContainersAPI(Protocol):
    def create(self, options: CreateOptions) -> Created: ...
    def start(self, ref: str) -> None: ...
    def stop(self, ref: str, timeout: int | None = None, signal: str | None = None) -> None: ...
    def kill(self, ref: str, signal: str = "SIGKILL") -> None: ...
    def restart(self, ref: str, timeout: int | None = None) -> None: ...
    def pause(self, ref: str) -> None: ...
    def unpause(self, ref: str) -> None: ...
    def wait(self, ref: str, condition: str = "not-running") -> WaitResult: ...
    def begin_wait(self, ref: str, condition: str = "not-running"
                   ) -> Callable[[], WaitResult]:
        """Register a wait now and give the function that blocks for its result: a wait
        registered before `start` sees even an instant exit (and, with "removed", the
        auto-removal that follows it)."""
        ...
    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None: ...
    def inspect(self, ref: str) -> Document: ...
    def state(self, ref: str) -> ContainerState: ...
    def logs(self, ref: str, options: LogOptions) -> Iterator[LogChunk]:
        """The container's log as it comes; asked for (and an unknown container raised)
        at the call, not at the first chunk, so a caller can start several at once."""
        ...
    def top(self, ref: str, ps_args: str = "") -> Top: ...
    def stats(self, ref: str) -> Document: ...
    def changes(self, ref: str) -> list[Change]: ...
    def commit(self, ref: str, options: CommitOptions) -> str: ...
    def prune(self, filters: Filters | None = None) -> PruneReport: ...
    def rename(self, ref: str, name: str) -> None: ...
    def update(self, ref: str, resources: Document) -> list[str]: ...
    def export(self, ref: str, out: IO[bytes]) -> None: ...
    def stat_path(self, ref: str, path: str) -> PathStat: ...
    def get_archive(self, ref: str, path: str, out: IO[bytes]) -> PathStat: ...
    def put_archive(self, ref: str, path: str, tar: Readable,
                    no_overwrite_dir_non_dir: bool = False, copy_uid_gid: bool = False) -> None: ...
    def attach(self, ref: str, stdin: bool = False, logs: bool = False,
               detach_keys: str = "") -> tuple[Stream, bytes]:
        """The container's stdio; the bytes are output already read past the handshake."""
        ...
    def resize(self, ref: str, rows: int, cols: int) -> None: ...
    def exec_create(self, ref: str, options: ExecOptions) -> str: ...
    def exec_start(self, exec_id: str, tty: bool = False,
                   console_size: tuple[int, int] | None = None) -> tuple[Stream, bytes]:
        """Start an exec attached; `console_size` (rows, columns) sizes its TTY from the
        first byte."""
        ...
    def exec_start_detached(self, exec_id: str) -> None: ...
    def exec_resize(self, exec_id: str, rows: int, cols: int) -> None: ...
    def exec_inspect(self, exec_id: str) -> ExecState: ...
    def list(self, all: bool = False, filters: Filters | None = None,
             size: bool = False, limit: int = 0) -> list[ContainerSummary]:
        """The containers (running ones unless `all`); `limit` > 0: only the last created."""
        ...


# -- networks and volumes --

@dataclass(frozen=True)
class NetworkCreate:
    name: str
    driver: str = "bridge"
    internal: bool = False
    attachable: bool = False
    enable_ipv6: bool = False  # compose files ask for it; this daemon refuses it (no IPv6)
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    ipam: Document | None = None  # Docker's IPAM object: Driver, Config [{Subnet, Gateway}]


@dataclass(frozen=True)
class EndpointOptions:
    aliases: list[str] = field(default_factory=list)
    ipv4_address: str = ""


class NetworksAPI(Protocol):
    def create(self, options: NetworkCreate) -> str: ...
    def inspect(self, ref: str) -> Document: ...
    def remove(self, ref: str) -> None: ...
    def prune(self, filters: Filters | None = None) -> PruneReport: ...
    def connect(self, network: str, container: str,
                endpoint: EndpointOptions | None = None) -> None: ...
    def disconnect(self, network: str, container: str, force: bool = False) -> None: ...
    def list(self, filters: Filters | None = None) -> list[Document]: ...


@dataclass(frozen=True)
class VolumeCreate:
    name: str = ""
    driver: str = "local"
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)


class VolumesAPI(Protocol):
    def create(self, options: VolumeCreate) -> Document: ...
    def inspect(self, name: str) -> Document: ...
    def remove(self, name: str, force: bool = False) -> None: ...
    def prune(self, filters: Filters | None = None) -> PruneReport: ...
    def list(self, filters: Filters | None = None) -> list[Document]: ...


# -- system --

@dataclass(frozen=True)
class Event:
    """One engine event; `revision` orders events and lets a watcher resume after it."""

    type: str
    action: str
    actor_id: str
    attributes: dict[str, str]
    time_nano: int
    revision: int = 0


@dataclass(frozen=True)
class EventOptions:
    since: str = ""
    until: str = ""
    filters: Filters = field(default_factory=dict)
    after_revision: int = 0  # resume: only events with a larger revision


class SystemAPI(Protocol):
    def ping(self) -> bool: ...
    def version(self) -> Document: ...
    def info(self) -> Document: ...
    def df(self) -> Document: ...
    def prune_build_cache(self) -> PruneReport:
        """Every cached build step and RUN cache mount (`builder prune`, `system prune`)."""
        ...
    def events(self, options: EventOptions) -> Iterator[Event]: ...


class RunCalls(Protocol):
    """What `portside run` asks of an engine, in plain values, so that an import-light
    implementation can serve the command's hot path without this module, dataclasses or
    typing (`portside.client.runpath.RunPath`); `portside.cli.engine.run_calls` serves it
    over any `EngineAPI`."""

    def create(self, body: Document, name: str = "") -> tuple[str, list[str]]:
        """Create from Docker's create body; the ID and the daemon's warnings."""
        ...
    def start(self, ref: str) -> None: ...
    def attach(self, ref: str, stdin: bool) -> tuple[Stream, bytes]: ...
    def begin_wait(self, ref: str, condition: str) -> Callable[[], tuple[int, str]]:
        """As `ContainersAPI.begin_wait`; the result is (exit status, error message)."""
        ...
    def resize(self, ref: str, rows: int, cols: int) -> None: ...


class EngineAPI(Protocol):
    """One engine: its containers, images, networks, volumes and system."""

    @property
    def containers(self) -> ContainersAPI: ...
    @property
    def images(self) -> ImagesAPI: ...
    @property
    def networks(self) -> NetworksAPI: ...
    @property
    def volumes(self) -> VolumesAPI: ...
    @property
    def system(self) -> SystemAPI: ...
