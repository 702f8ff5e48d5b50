"""`RemoteEngine`: the engine interface over the daemon's socket (the Docker Engine API).

The one place that knows the daemon's HTTP paths and Docker's JSON shapes: every call of
`portside.engine.interface` becomes a request, every answer a dataclass, and every error
the class the engine raised (`errors.from_wire`). Streams (pull and push progress, build
output, logs, events) are read as they come.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import IO, Any, cast

from portside.client.transport import Client, Response, _quote, demux_frames
from portside.engine.interface import (
    BuildOptions,
    BuildProgress,
    Change,
    CommitOptions,
    ContainerState,
    ContainerSummary,
    Created,
    CreateOptions,
    Credentials,
    Document,
    EndpointOptions,
    EngineAPI,
    Event,
    EventOptions,
    ExecOptions,
    ExecState,
    Filters,
    HistoryEntry,
    ImageSummary,
    ImportOptions,
    LogChunk,
    LogOptions,
    NetworkCreate,
    PathStat,
    Progress,
    PruneReport,
    PullOptions,
    PullReport,
    PushOptions,
    PushReport,
    Readable,
    RemovedImage,
    Stream,
    Top,
    VolumeCreate,
    WaitResult,
)
from portside.engine.reports import (
    ProgressFeed,
    changes,
    connect_body,
    container_state,
    container_summary,
    event,
    exec_body,
    exec_state,
    history_entry,
    image_summary,
    network_body,
    path_stat,
    prune_report,
    pull_outcome,
    push_outcome,
    removed_image,
    split_reference,
    top,
    volume_body,
    wait_result,
)
from portside.errors import PortsideError, from_wire


class StreamError(PortsideError):
    """An error the daemon reported inside a progress stream (after its 200)."""


def _q(text: str) -> str:
    return _quote(text)


_split = split_reference


def _filters(filters: Filters | None) -> str | None:
    return json.dumps(filters) if filters else None


def _auth_header(credentials: Credentials | None) -> dict[str, str]:
    """Docker's X-Registry-Auth: base64url of the JSON auth config."""
    if credentials is None:
        return {}
    config = {"username": credentials.username, "password": credentials.password,
              "identitytoken": credentials.identity_token, "serveraddress": credentials.server}
    raw = json.dumps({k: v for k, v in config.items() if v}).encode()
    return {"X-Registry-Auth": base64.urlsafe_b64encode(raw).decode()}


def json_lines(resp: Response) -> Iterator[dict[str, Any]]:
    """The JSON messages of a streamed answer; an error message raises (as its class when
    the daemon named one)."""
    while True:
        line = resp.readline()
        if not line:
            return
        if not line.strip():
            continue
        msg = json.loads(line)
        if not isinstance(msg, dict):
            continue
        if msg.get("error") or msg.get("errorDetail"):
            resp.sock.close()
            detail = msg.get("errorDetail") or {}
            text = str(msg.get("error") or detail.get("message"))
            typed = from_wire({"message": text, **msg})  # a stream's error says it in `error`
            raise typed or StreamError(text)
        yield msg


def follow_progress(resp: Response, progress: Progress) -> Iterator[dict[str, Any]]:
    """Feed Docker's per-layer progress messages to `progress`; yield the other messages."""
    feed = ProgressFeed(progress)
    try:
        for msg in json_lines(resp):
            if feed.feed(msg) is not None:
                yield msg
    finally:
        progress.close()


def _path_stat(header: str) -> PathStat:
    return path_stat(json.loads(base64.b64decode(header)) if header else {})


def _closing(chunks: Iterator[LogChunk], resp: Response) -> Iterator[LogChunk]:
    """The chunks of a response body; its socket closed once they are read (or dropped)."""
    try:
        yield from chunks
    finally:
        resp.sock.close()


def _copy_body(resp: Response, out: IO[bytes]) -> None:
    while True:
        block = resp.read1(1 << 20)
        if not block:
            break
        out.write(block)
    resp.sock.close()


class RemoteImages:
    def __init__(self, client: Client) -> None:
        self.c = client

    def inspect(self, ref: str) -> Document:
        return cast(Document, self.c.get(f"/images/{ref}/json"))

    def history(self, ref: str) -> list[HistoryEntry]:
        return [history_entry(h) for h in self.c.get(f"/images/{ref}/history") or []]

    def tag(self, source: str, target: str) -> None:
        repo, tag = _split(target)
        self.c.request("POST", f"/images/{source}/tag", {"repo": repo, "tag": tag or "latest"}
                       ).read()

    def remove(self, ref: str, force: bool = False, prune: bool = True) -> list[RemovedImage]:
        docs = self.c.json("DELETE", f"/images/{ref}", {"force": force, "noprune": not prune})
        return [removed_image(d) for d in docs or []]

    def prune(self, filters: Filters | None = None) -> PruneReport:
        return prune_report(self.c.post("/images/prune", filters=_filters(filters)) or {},
                      "ImagesDeleted")

    def pull(self, options: PullOptions, progress: Progress) -> PullReport:
        repo, tag = _split(options.reference)
        params = {"fromImage": repo, "tag": tag or "latest", "platform": options.platform,
                  "insecure": options.insecure or None}
        resp = self.c.request("POST", "/images/create", params,
                              headers=_auth_header(options.credentials))
        digest, updated = pull_outcome(list(follow_progress(resp, progress)))
        image = self.inspect(f"{repo}@{tag}" if tag.startswith("sha256:") else
                             f"{repo}:{tag or 'latest'}")
        return PullReport(image_id=str(image["Id"]), digest=digest, updated=updated)

    def push(self, options: PushOptions, progress: Progress) -> PushReport:
        repo, tag = _split(options.reference)
        resp = self.c.request("POST", f"/images/{repo}/push",
                              {"tag": tag or None, "insecure": options.insecure or None},
                              headers=_auth_header(options.credentials or Credentials()))
        digest, size = push_outcome(list(follow_progress(resp, progress)))
        return PushReport(reference=options.reference, digest=digest, size=size)

    def save(self, refs_: list[str], out: IO[bytes], format: str = "oci") -> None:
        query = "&".join(f"names={_q(r)}" for r in refs_)
        _copy_body(self.c.request("GET", f"/images/get?{query}", {"format": format}), out)

    def load(self, archive: Readable) -> list[str]:
        resp = self.c.request("POST", "/images/load", {"quiet": True}, upload=archive)
        loaded = []
        for msg in json_lines(resp):
            text = str(msg.get("stream", ""))
            for prefix in ("Loaded image: ", "Loaded image ID: "):
                if text.startswith(prefix):
                    loaded.append(text[len(prefix):].strip())
        return loaded

    def import_(self, tar: Readable, options: ImportOptions) -> str:
        params: dict[str, Any] = {"fromSrc": "-", "message": options.message or None,
                                  "platform": options.platform or None}
        if options.reference:
            params["repo"], tag = _split(options.reference)
            params["tag"] = tag or "latest"
        query = "&".join(f"changes={_q(c)}" for c in options.changes)
        resp = self.c.request("POST", "/images/create" + (f"?{query}" if query else ""),
                              params, upload=tar)
        image = ""
        for msg in json_lines(resp):
            image = str(msg.get("status", image)).strip() or image
        return image

    def build(self, context: Readable, options: BuildOptions,
              log: Callable[[str], None], steps: BuildProgress | None = None) -> str:
        from portside.client.buildcontext import BuildUpload
        from portside.engine import buildsteps

        git = options.git
        params: dict[str, Any] = {
            # portside's extensions (docs/build.md): beyond the classic protocol
            "push": options.push or None, "reproducible": options.reproducible or None,
            "epoch": options.epoch, "steps": steps is not None or None,
            "dockerfile_name": options.dockerfile_name or None,
            "git": {"revision": git.revision, "source": git.source, "dirty": git.dirty,
                    "commit_time": git.commit_time} if git else None,
            # the classic protocol's
            "dockerfile": options.dockerfile, "buildargs": options.build_args or None,
            "target": options.target or None, "labels": options.labels or None,
            "nocache": options.no_cache or None, "pull": options.pull or None,
            "cachefrom": options.cache_from or None, "platform": options.platform or None,
            "networkmode": options.network_mode or None, "q": options.quiet or None}
        # `t` repeats, which a params dict cannot say: the whole query goes in the path
        # (the transport would add a second `?` after one already there).
        query = [f"t={_q(t)}" for t in options.tags] + [
            f"{_q(k)}={_q(json.dumps(v) if isinstance(v, dict | list) else '1' if v is True else str(v))}"
            for k, v in params.items() if v is not None]
        path = "/build" + ("?" + "&".join(query) if query else "")
        upload, kind = context, "application/x-tar"
        if options.secrets:  # in the body, before the context: never in the query or on disk
            upload = body = BuildUpload(options.secrets, context)
            kind = body.content_type
        resp = self.c.request("POST", path, None, upload=upload, content_type=kind)
        image = ""
        for msg in json_lines(resp):
            if steps is not None and buildsteps.replay(msg, steps):
                continue
            if msg.get("stream"):
                log(str(msg["stream"]))
            aux = msg.get("aux") or {}
            if isinstance(aux, dict) and aux.get("ID"):
                image = str(aux["ID"])
        return image

    def list(self, all: bool = False, filters: Filters | None = None) -> list[ImageSummary]:
        docs = self.c.get("/images/json", all=all, filters=_filters(filters)) or []
        return [image_summary(d) for d in docs]


class RemoteContainers:
    def __init__(self, client: Client) -> None:
        self.c = client

    def create(self, options: CreateOptions) -> Created:
        doc = self.c.post("/containers/create", options.body, name=options.name or None)
        return Created(id=doc["Id"], warnings=doc.get("Warnings") or [])

    def start(self, ref: str) -> None:
        self.c.request("POST", f"/containers/{ref}/start").read()

    def stop(self, ref: str, timeout: int | None = None, signal: str | None = None) -> None:
        self.c.request("POST", f"/containers/{ref}/stop", {"t": timeout, "signal": signal}).read()

    def kill(self, ref: str, signal: str = "SIGKILL") -> None:
        self.c.request("POST", f"/containers/{ref}/kill", {"signal": signal}).read()

    def restart(self, ref: str, timeout: int | None = None) -> None:
        self.c.request("POST", f"/containers/{ref}/restart", {"t": timeout}).read()

    def pause(self, ref: str) -> None:
        self.c.request("POST", f"/containers/{ref}/pause").read()

    def unpause(self, ref: str) -> None:
        self.c.request("POST", f"/containers/{ref}/unpause").read()

    def wait(self, ref: str, condition: str = "not-running") -> WaitResult:
        return wait_result(self.c.post(f"/containers/{ref}/wait", condition=condition) or {})

    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        self.c.request("DELETE", f"/containers/{ref}", {"force": force, "v": volumes}).read()

    def inspect(self, ref: str) -> Document:
        return cast(Document, self.c.get(f"/containers/{ref}/json"))

    def state(self, ref: str) -> ContainerState:
        return container_state(self.c.get(f"/containers/{ref}/json")["State"])

    def logs(self, ref: str, options: LogOptions) -> Iterator[LogChunk]:
        tty = bool(self.c.get(f"/containers/{ref}/json")["Config"].get("Tty"))
        resp = self.c.request("GET", f"/containers/{ref}/logs", {
            "follow": options.follow, "stdout": options.stdout, "stderr": options.stderr,
            "timestamps": options.timestamps, "since": options.since or None,
            "until": options.until or None, "tail": options.tail})
        return _closing(demux_frames(resp, tty), resp)

    def top(self, ref: str, ps_args: str = "") -> Top:
        return top(self.c.get(f"/containers/{ref}/top", ps_args=ps_args or None))

    def stats(self, ref: str) -> Document:
        return cast(Document, self.c.get(f"/containers/{ref}/stats", stream=False))

    def changes(self, ref: str) -> list[Change]:
        return changes(self.c.get(f"/containers/{ref}/changes"))

    def commit(self, ref: str, options: CommitOptions) -> str:
        params: dict[str, Any] = {"container": ref, "comment": options.comment or None,
                                  "author": options.author or None, "pause": options.pause}
        if options.reference:
            params["repo"], tag = _split(options.reference)
            params["tag"] = tag or "latest"
        query = "&".join(f"changes={_q(c)}" for c in options.changes)
        return str(self.c.post("/commit" + (f"?{query}" if query else ""), **params)["Id"])

    def prune(self, filters: Filters | None = None) -> PruneReport:
        return prune_report(self.c.post("/containers/prune", filters=_filters(filters)) or {},
                      "ContainersDeleted")

    def rename(self, ref: str, name: str) -> None:
        self.c.request("POST", f"/containers/{ref}/rename", {"name": name}).read()

    def update(self, ref: str, resources: Document) -> list[str]:
        return list(self.c.post(f"/containers/{ref}/update", resources).get("Warnings") or [])

    def export(self, ref: str, out: IO[bytes]) -> None:
        _copy_body(self.c.request("GET", f"/containers/{ref}/export"), out)

    def stat_path(self, ref: str, path: str) -> PathStat:
        resp = self.c.request("HEAD", f"/containers/{ref}/archive", {"path": path})
        resp.sock.close()
        return _path_stat(resp.headers.get("x-docker-container-path-stat", ""))

    def get_archive(self, ref: str, path: str, out: IO[bytes]) -> PathStat:
        resp = self.c.request("GET", f"/containers/{ref}/archive", {"path": path})
        stat = _path_stat(resp.headers.get("x-docker-container-path-stat", ""))
        _copy_body(resp, out)
        return stat

    def put_archive(self, ref: str, path: str, tar: Readable,
                    no_overwrite_dir_non_dir: bool = False, copy_uid_gid: bool = False) -> None:
        self.c.request("PUT", f"/containers/{ref}/archive", {
            "path": path, "noOverwriteDirNonDir": no_overwrite_dir_non_dir or None,
            "copyUIDGID": copy_uid_gid or None}, upload=tar).read()

    def attach(self, ref: str, stdin: bool = False, logs: bool = False,
               detach_keys: str = "") -> tuple[Stream, bytes]:
        return self.c.hijack(f"/containers/{ref}/attach", {
            "stream": 1, "stdin": stdin, "stdout": 1, "stderr": 1, "logs": logs or None,
            "detachKeys": detach_keys or None})

    def resize(self, ref: str, rows: int, cols: int) -> None:
        self.c.request("POST", f"/containers/{ref}/resize", {"h": rows, "w": cols}).read()

    def exec_create(self, ref: str, options: ExecOptions) -> str:
        doc = self.c.post(f"/containers/{ref}/exec", exec_body(options))
        return str(doc["Id"])

    def exec_start(self, exec_id: str, tty: bool = False,
                   console_size: tuple[int, int] | None = None) -> tuple[Stream, bytes]:
        body: dict[str, Any] = {"Detach": False, "Tty": tty}
        if console_size is not None:
            body["ConsoleSize"] = list(console_size)
        return self.c.hijack(f"/exec/{exec_id}/start", body=body)

    def exec_start_detached(self, exec_id: str) -> None:
        self.c.request("POST", f"/exec/{exec_id}/start", body={"Detach": True}).read()

    def exec_resize(self, exec_id: str, rows: int, cols: int) -> None:
        self.c.request("POST", f"/exec/{exec_id}/resize", {"h": rows, "w": cols}).read()

    def exec_inspect(self, exec_id: str) -> ExecState:
        return exec_state(self.c.get(f"/exec/{exec_id}/json"))

    # -- added for the CLI's run path (issue 11) --

    def begin_wait(self, ref: str, condition: str = "not-running"
                   ) -> Callable[[], WaitResult]:
        # The daemon answers the headers once the wait is registered, the body at the end.
        resp = self.c.request("POST", f"/containers/{ref}/wait", {"condition": condition})

        def result() -> WaitResult:
            raw = resp.read()
            return wait_result(json.loads(raw) if raw.strip() else {})

        return result

    def list(self, all: bool = False, filters: Filters | None = None,
             size: bool = False, limit: int = 0) -> list[ContainerSummary]:
        docs = self.c.get("/containers/json", all=all, filters=_filters(filters),
                          size=size or None, limit=limit or None) or []
        return [container_summary(d) for d in docs]


class RemoteNetworks:
    def __init__(self, client: Client) -> None:
        self.c = client

    def create(self, options: NetworkCreate) -> str:
        return str(self.c.post("/networks/create", network_body(options))["Id"])

    def inspect(self, ref: str) -> Document:
        return cast(Document, self.c.get(f"/networks/{ref}"))

    def remove(self, ref: str) -> None:
        self.c.request("DELETE", f"/networks/{ref}").read()

    def prune(self, filters: Filters | None = None) -> PruneReport:
        return prune_report(self.c.post("/networks/prune", filters=_filters(filters)) or {},
                      "NetworksDeleted")

    def connect(self, network: str, container: str,
                endpoint: EndpointOptions | None = None) -> None:
        self.c.post(f"/networks/{network}/connect", connect_body(container, endpoint))

    def disconnect(self, network: str, container: str, force: bool = False) -> None:
        self.c.post(f"/networks/{network}/disconnect", {"Container": container, "Force": force})

    def list(self, filters: Filters | None = None) -> list[Document]:
        return cast(list[Document], self.c.get("/networks", filters=_filters(filters)) or [])

class RemoteVolumes:
    def __init__(self, client: Client) -> None:
        self.c = client

    def create(self, options: VolumeCreate) -> Document:
        return cast(Document, self.c.post("/volumes/create", volume_body(options)))

    def inspect(self, name: str) -> Document:
        return cast(Document, self.c.get(f"/volumes/{name}"))

    def remove(self, name: str, force: bool = False) -> None:
        self.c.request("DELETE", f"/volumes/{name}", {"force": force}).read()

    def prune(self, filters: Filters | None = None) -> PruneReport:
        return prune_report(self.c.post("/volumes/prune", filters=_filters(filters)) or {},
                      "VolumesDeleted")

    def list(self, filters: Filters | None = None) -> list[Document]:
        doc = self.c.get("/volumes", filters=_filters(filters)) or {}
        return cast(list[Document], doc.get("Volumes") or [])

class RemoteSystem:
    def __init__(self, client: Client) -> None:
        self.c = client

    def ping(self) -> bool:
        return self.c.request("GET", "/_ping").read() == b"OK"

    def version(self) -> Document:
        return cast(Document, self.c.get("/version"))

    def info(self) -> Document:
        return cast(Document, self.c.get("/info"))

    def df(self) -> Document:
        return cast(Document, self.c.get("/system/df"))

    def prune_build_cache(self) -> PruneReport:
        return prune_report(self.c.post("/build/prune") or {}, "CachesDeleted")

    def events(self, options: EventOptions) -> Iterator[Event]:
        resp = self.c.request("GET", "/events", {
            "since": options.since or None, "until": options.until or None,
            "filters": _filters(options.filters),
            "after_revision": options.after_revision or None})
        try:
            for msg in json_lines(resp):
                yield event(msg)
        finally:
            resp.sock.close()


class RemoteEngine:
    """The engine behind the daemon's socket (started on first use when it is absent)."""

    def __init__(self, client: Client | None = None) -> None:
        self.client = client or Client()
        self._containers = RemoteContainers(self.client)
        self._images = RemoteImages(self.client)
        self._networks = RemoteNetworks(self.client)
        self._volumes = RemoteVolumes(self.client)
        self._system = RemoteSystem(self.client)

    @property
    def containers(self) -> RemoteContainers:
        return self._containers

    @property
    def images(self) -> RemoteImages:
        return self._images

    @property
    def networks(self) -> RemoteNetworks:
        return self._networks

    @property
    def volumes(self) -> RemoteVolumes:
        return self._volumes

    @property
    def system(self) -> RemoteSystem:
        return self._system


def _conforms(engine: RemoteEngine) -> EngineAPI:
    """Static proof (mypy) that RemoteEngine is an EngineAPI."""
    return engine
