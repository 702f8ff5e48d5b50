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
from portside.engine.reports import container_summary, image_summary, prune_report
from portside.errors import PortsideError, from_wire
from portside.oci import reference as refs


class StreamError(PortsideError):
    """An error the daemon reported inside a progress stream (after its 200)."""


def _q(text: str) -> str:
    return _quote(text)


def _split(text: str) -> tuple[str, str]:
    """A reference as the repository the user named and its tag (or digest)."""
    ref = refs.parse(text)
    return ref.familiar_repository, ref.digest or ref.tag or ""


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
            typed = from_wire(msg)
            detail = msg.get("errorDetail") or {}
            raise typed or StreamError(str(msg.get("error") or detail.get("message")))
        yield msg


def follow_progress(resp: Response, progress: Progress) -> Iterator[dict[str, Any]]:
    """Feed Docker's per-layer progress messages to `progress`; yield the other messages."""
    current: dict[str, int] = {}
    try:
        for msg in json_lines(resp):
            key, status = msg.get("id"), str(msg.get("status", ""))
            detail = msg.get("progressDetail") or {}
            if key and detail.get("total"):
                if key not in current:
                    progress.start(key, int(detail["total"]))
                    current[key] = 0
                now = int(detail.get("current") or 0)
                progress.advance(key, now - current[key])
                current[key] = now
            elif key and status and not detail:
                if status.endswith(("complete", "exists", "Pushed")) or status.startswith(
                        ("Mounted from", "Already")):
                    progress.done(key, status)
                    current.pop(key, None)
                else:
                    yield msg
            else:
                yield msg
    finally:
        progress.close()


def _path_stat(header: str) -> PathStat:
    doc = json.loads(base64.b64decode(header)) if header else {}
    return PathStat(name=doc.get("name", ""), size=int(doc.get("size") or 0),
                    mode=int(doc.get("mode") or 0), mtime=doc.get("mtime", ""),
                    link_target=doc.get("linkTarget", ""))


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
        return [HistoryEntry(id=h.get("Id", ""), created=int(h.get("Created") or 0),
                             created_by=h.get("CreatedBy", ""), size=int(h.get("Size") or 0),
                             comment=h.get("Comment", ""), tags=h.get("Tags") or [])
                for h in self.c.get(f"/images/{ref}/history") or []]

    def tag(self, source: str, target: str) -> None:
        repo, tag = _split(target)
        self.c.request("POST", f"/images/{source}/tag", {"repo": repo, "tag": tag or "latest"}
                       ).read()

    def remove(self, ref: str, force: bool = False, prune: bool = True) -> list[RemovedImage]:
        docs = self.c.json("DELETE", f"/images/{ref}", {"force": force, "noprune": not prune})
        return [RemovedImage(untagged=d.get("Untagged", ""), deleted=d.get("Deleted", ""))
                for d in docs or []]

    def prune(self, filters: Filters | None = None) -> PruneReport:
        return prune_report(self.c.post("/images/prune", filters=_filters(filters)) or {},
                      "ImagesDeleted")

    def pull(self, options: PullOptions, progress: Progress) -> PullReport:
        repo, tag = _split(options.reference)
        params = {"fromImage": repo, "tag": tag or "latest", "platform": options.platform,
                  "insecure": options.insecure or None}
        resp = self.c.request("POST", "/images/create", params,
                              headers=_auth_header(options.credentials))
        digest, updated = "", False
        for msg in follow_progress(resp, progress):
            text = str(msg.get("status", ""))
            if text.startswith("Digest: "):
                digest = text.removeprefix("Digest: ")
            elif text.startswith("Status: "):
                updated = text.startswith("Status: Downloaded newer image")
        image = self.inspect(f"{repo}@{tag}" if tag.startswith("sha256:") else
                             f"{repo}:{tag or 'latest'}")
        return PullReport(image_id=str(image["Id"]), digest=digest, updated=updated)

    def push(self, options: PushOptions, progress: Progress) -> PushReport:
        repo, tag = _split(options.reference)
        resp = self.c.request("POST", f"/images/{repo}/push",
                              {"tag": tag or None, "insecure": options.insecure or None},
                              headers=_auth_header(options.credentials or Credentials()))
        digest, size = "", 0
        for msg in follow_progress(resp, progress):
            aux = msg.get("aux") or {}
            if aux.get("Digest"):
                digest, size = aux["Digest"], int(aux.get("Size") or 0)
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
              log: Callable[[str], None]) -> str:
        params: dict[str, Any] = {
            "dockerfile": options.dockerfile, "buildargs": options.build_args or None,
            "target": options.target or None, "labels": options.labels or None,
            "nocache": options.no_cache or None, "pull": options.pull or None,
            "cachefrom": options.cache_from or None, "platform": options.platform or None,
            "networkmode": options.network_mode or None, "q": options.quiet or None}
        path = "/build" + ("?" + "&".join(f"t={_q(t)}" for t in options.tags) if options.tags
                           else "")
        resp = self.c.request("POST", path, params, upload=context)
        image = ""
        for msg in json_lines(resp):
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
        doc = self.c.post(f"/containers/{ref}/wait", condition=condition) or {}
        return WaitResult(status_code=int(doc.get("StatusCode", 0)),
                          error=((doc.get("Error") or {}).get("Message") or ""))

    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        self.c.request("DELETE", f"/containers/{ref}", {"force": force, "v": volumes}).read()

    def inspect(self, ref: str) -> Document:
        return cast(Document, self.c.get(f"/containers/{ref}/json"))

    def state(self, ref: str) -> ContainerState:
        st = self.c.get(f"/containers/{ref}/json")["State"]
        return ContainerState(status=st.get("Status", ""), running=bool(st.get("Running")),
                              paused=bool(st.get("Paused")), exit_code=int(st.get("ExitCode") or 0),
                              pid=int(st.get("Pid") or 0), error=st.get("Error") or "",
                              health=(st.get("Health") or {}).get("Status") or "",
                              oom_killed=bool(st.get("OOMKilled")))

    def logs(self, ref: str, options: LogOptions) -> Iterator[LogChunk]:
        tty = bool(self.c.get(f"/containers/{ref}/json")["Config"].get("Tty"))
        resp = self.c.request("GET", f"/containers/{ref}/logs", {
            "follow": options.follow, "stdout": options.stdout, "stderr": options.stderr,
            "timestamps": options.timestamps, "since": options.since or None,
            "until": options.until or None, "tail": options.tail})
        return _closing(demux_frames(resp, tty), resp)

    def top(self, ref: str, ps_args: str = "") -> Top:
        doc = self.c.get(f"/containers/{ref}/top", ps_args=ps_args or None)
        return Top(titles=doc.get("Titles") or [], processes=doc.get("Processes") or [])

    def stats(self, ref: str) -> Document:
        return cast(Document, self.c.get(f"/containers/{ref}/stats", stream=False))

    def changes(self, ref: str) -> list[Change]:
        return [Change(path=c["Path"], kind=int(c["Kind"]))
                for c in self.c.get(f"/containers/{ref}/changes") or []]

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
        doc = self.c.post(f"/containers/{ref}/exec", {
            "Cmd": options.cmd, "Tty": options.tty, "AttachStdin": options.stdin,
            "AttachStdout": options.stdout, "AttachStderr": options.stderr,
            "Env": options.env or None,
            "WorkingDir": options.workdir or None, "User": options.user or None,
            "Privileged": options.privileged, "DetachKeys": options.detach_keys or None})
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
        doc = self.c.get(f"/exec/{exec_id}/json")
        code = doc.get("ExitCode")
        return ExecState(running=bool(doc.get("Running")),
                         exit_code=None if code is None else int(code), pid=int(doc.get("Pid") or 0))

    # -- added for the CLI's run path (issue 11) --

    def begin_wait(self, ref: str, condition: str = "not-running"
                   ) -> Callable[[], WaitResult]:
        # The daemon answers the headers once the wait is registered, the body at the end.
        resp = self.c.request("POST", f"/containers/{ref}/wait", {"condition": condition})

        def result() -> WaitResult:
            raw = resp.read()
            doc = json.loads(raw) if raw.strip() else {}
            return WaitResult(status_code=int(doc.get("StatusCode", 0)),
                              error=((doc.get("Error") or {}).get("Message") or ""))

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
        body: dict[str, Any] = {"Name": options.name, "Driver": options.driver,
                                "Internal": options.internal, "Attachable": options.attachable,
                                "EnableIPv6": options.enable_ipv6,
                                "Labels": options.labels, "Options": options.options,
                                "CheckDuplicate": True}
        if options.ipam is not None:
            body["IPAM"] = options.ipam
        return str(self.c.post("/networks/create", body)["Id"])

    def inspect(self, ref: str) -> Document:
        return cast(Document, self.c.get(f"/networks/{ref}"))

    def remove(self, ref: str) -> None:
        self.c.request("DELETE", f"/networks/{ref}").read()

    def prune(self, filters: Filters | None = None) -> PruneReport:
        return prune_report(self.c.post("/networks/prune", filters=_filters(filters)) or {},
                      "NetworksDeleted")

    def connect(self, network: str, container: str,
                endpoint: EndpointOptions | None = None) -> None:
        config: dict[str, Any] = {}
        if endpoint is not None:
            config = {"Aliases": endpoint.aliases or None}
            if endpoint.ipv4_address:
                config["IPAMConfig"] = {"IPv4Address": endpoint.ipv4_address}
        self.c.post(f"/networks/{network}/connect", {"Container": container,
                                                      "EndpointConfig": config})

    def disconnect(self, network: str, container: str, force: bool = False) -> None:
        self.c.post(f"/networks/{network}/disconnect", {"Container": container, "Force": force})

    def list(self, filters: Filters | None = None) -> list[Document]:
        return cast(list[Document], self.c.get("/networks", filters=_filters(filters)) or [])

class RemoteVolumes:
    def __init__(self, client: Client) -> None:
        self.c = client

    def create(self, options: VolumeCreate) -> Document:
        return cast(Document, self.c.post("/volumes/create", {
            "Name": options.name, "Driver": options.driver, "Labels": options.labels,
            "DriverOpts": options.options}))

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
                actor = msg.get("Actor") or {}
                yield Event(type=msg.get("Type", ""), action=msg.get("Action", ""),
                            actor_id=actor.get("ID", ""), attributes=actor.get("Attributes") or {},
                            time_nano=int(msg.get("timeNano") or 0),
                            revision=int(msg.get("revision") or 0))
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
