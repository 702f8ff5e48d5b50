"""Docker's JSON documents read into the engine interface's reports, and its options
written as Docker's request bodies, once for every implementation (`RemoteEngine` reads
the daemon's answers, `LocalEngine` the same documents made in-process)."""

from __future__ import annotations

from typing import Any

from portside.engine.interface import (
    Change,
    ContainerState,
    ContainerSummary,
    EndpointOptions,
    Event,
    ExecOptions,
    ExecState,
    HistoryEntry,
    ImageSummary,
    NetworkCreate,
    PathStat,
    Port,
    Progress,
    PruneReport,
    RemovedImage,
    Top,
    VolumeCreate,
    WaitResult,
)
from portside.oci import reference as refs


def image_summary(doc: dict[str, Any]) -> ImageSummary:
    tags = [t for t in doc.get("RepoTags") or [] if t != "<none>:<none>"]
    digests = [d for d in doc.get("RepoDigests") or [] if not d.startswith("<none>")]
    return ImageSummary(id=doc["Id"], tags=tags, digests=digests, created=int(doc.get("Created") or 0),
                        size=int(doc.get("Size") or 0), labels=doc.get("Labels") or {},
                        containers=int(doc.get("Containers", -1)))


def container_summary(doc: dict[str, Any]) -> ContainerSummary:
    ports = [Port(private=int(p.get("PrivatePort") or 0), protocol=p.get("Type") or "tcp",
                  public=int(p.get("PublicPort") or 0), ip=p.get("IP") or "")
             for p in doc.get("Ports") or []]
    nets = list(((doc.get("NetworkSettings") or {}).get("Networks") or {}).keys())
    return ContainerSummary(
        id=doc["Id"], names=doc.get("Names") or [], image=doc.get("Image", ""),
        image_id=doc.get("ImageID", ""), command=doc.get("Command", ""),
        created=int(doc.get("Created") or 0), state=doc.get("State", ""),
        status=doc.get("Status", ""), labels=doc.get("Labels") or {}, ports=ports,
        mounts=[m.get("Name") or m.get("Source", "") for m in doc.get("Mounts") or []],
        networks=nets, size_rw=doc.get("SizeRw"))


def prune_report(doc: dict[str, Any], key: str) -> PruneReport:
    deleted, untagged = [], []
    for item in doc.get(key) or []:
        if isinstance(item, dict):
            if item.get("Untagged"):
                untagged.append(item["Untagged"])
            if item.get("Deleted"):
                deleted.append(item["Deleted"])
        else:
            deleted.append(str(item))
    return PruneReport(deleted=deleted, space_reclaimed=int(doc.get("SpaceReclaimed") or 0),
                       untagged=untagged)


def wait_result(doc: dict[str, Any]) -> WaitResult:
    """`POST /containers/{id}/wait`'s answer: {"StatusCode": n, "Error": {"Message": ...}}."""
    return WaitResult(status_code=int(doc.get("StatusCode", 0)),
                      error=((doc.get("Error") or {}).get("Message") or ""))


def container_state(st: dict[str, Any]) -> ContainerState:
    """The `State` object of a container's inspect document."""
    return ContainerState(status=st.get("Status", ""), running=bool(st.get("Running")),
                          paused=bool(st.get("Paused")), exit_code=int(st.get("ExitCode") or 0),
                          pid=int(st.get("Pid") or 0), error=st.get("Error") or "",
                          health=(st.get("Health") or {}).get("Status") or "",
                          oom_killed=bool(st.get("OOMKilled")))


def top(doc: dict[str, Any]) -> Top:
    return Top(titles=doc.get("Titles") or [], processes=doc.get("Processes") or [])


def changes(docs: list[dict[str, Any]] | None) -> list[Change]:
    return [Change(path=c["Path"], kind=int(c["Kind"])) for c in docs or []]


def path_stat(doc: dict[str, Any]) -> PathStat:
    """`X-Docker-Container-Path-Stat`'s JSON (decoded from its base64)."""
    return PathStat(name=doc.get("name", ""), size=int(doc.get("size") or 0),
                    mode=int(doc.get("mode") or 0), mtime=doc.get("mtime", ""),
                    link_target=doc.get("linkTarget", ""))


def history_entry(h: dict[str, Any]) -> HistoryEntry:
    return HistoryEntry(id=h.get("Id", ""), created=int(h.get("Created") or 0),
                        created_by=h.get("CreatedBy", ""), size=int(h.get("Size") or 0),
                        comment=h.get("Comment", ""), tags=h.get("Tags") or [])


def removed_image(d: dict[str, Any]) -> RemovedImage:
    return RemovedImage(untagged=d.get("Untagged", ""), deleted=d.get("Deleted", ""))


def exec_state(doc: dict[str, Any]) -> ExecState:
    """`GET /exec/{id}/json`: running, the exit code once it ended, the PID."""
    code = doc.get("ExitCode")
    return ExecState(running=bool(doc.get("Running")),
                     exit_code=None if code is None else int(code), pid=int(doc.get("Pid") or 0))


def event(msg: dict[str, Any]) -> Event:
    """One message of `GET /events`."""
    actor = msg.get("Actor") or {}
    return Event(type=msg.get("Type", ""), action=msg.get("Action", ""),
                 actor_id=actor.get("ID", ""), attributes=actor.get("Attributes") or {},
                 time_nano=int(msg.get("timeNano") or 0), revision=int(msg.get("revision") or 0))


def split_reference(text: str) -> tuple[str, str]:
    """A reference as the repository the user named and its tag (or digest): Docker's
    `repo` and `tag` parameters (tag, commit, import, pull)."""
    ref = refs.parse(text)
    return ref.familiar_repository, ref.digest or ref.tag or ""


def pull_reference(image: str, tag: str) -> str:
    """dockerd's `fromImage` + `tag`: the tag replaces one in the name; it may be a digest."""
    if not tag:
        return image
    ref = refs.parse(image)
    return f"{ref.repository}@{tag}" if tag.startswith("sha256:") else f"{ref.repository}:{tag}"


# -- the engine interface's options as Docker's request bodies --

def exec_body(options: ExecOptions) -> dict[str, Any]:
    """`POST /containers/{id}/exec`'s body."""
    return {"Cmd": options.cmd, "Tty": options.tty, "AttachStdin": options.stdin,
            "AttachStdout": options.stdout, "AttachStderr": options.stderr,
            "Env": options.env or None,
            "WorkingDir": options.workdir or None, "User": options.user or None,
            "Privileged": options.privileged, "DetachKeys": options.detach_keys or None}


def network_body(options: NetworkCreate) -> dict[str, Any]:
    """`POST /networks/create`'s body."""
    body: dict[str, Any] = {"Name": options.name, "Driver": options.driver,
                            "Internal": options.internal, "Attachable": options.attachable,
                            "EnableIPv6": options.enable_ipv6,
                            "Labels": options.labels, "Options": options.options,
                            "CheckDuplicate": True}
    if options.ipam is not None:
        body["IPAM"] = options.ipam
    return body


def connect_body(container: str, endpoint: EndpointOptions | None) -> dict[str, Any]:
    """`POST /networks/{id}/connect`'s body."""
    config: dict[str, Any] = {}
    if endpoint is not None:
        config = {"Aliases": endpoint.aliases or None}
        if endpoint.ipv4_address:
            config["IPAMConfig"] = {"IPv4Address": endpoint.ipv4_address}
    return {"Container": container, "EndpointConfig": config}


def volume_body(options: VolumeCreate) -> dict[str, Any]:
    """`POST /volumes/create`'s body."""
    return {"Name": options.name, "Driver": options.driver, "Labels": options.labels,
            "DriverOpts": options.options}


# -- progress streams (pull, push) --

class ProgressFeed:
    """Docker's per-layer progress messages fed to a `Progress`; `feed` gives back the
    messages that are not per-layer progress (statuses, digests, aux)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.current: dict[str, int] = {}

    def feed(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        key, status = msg.get("id"), str(msg.get("status", ""))
        detail = msg.get("progressDetail") or {}
        if key and detail.get("total"):
            if key not in self.current:
                self.progress.start(key, int(detail["total"]))
                self.current[key] = 0
            now = int(detail.get("current") or 0)
            self.progress.advance(key, now - self.current[key])
            self.current[key] = now
            return None
        if key and status and not detail and (
                status.endswith(("complete", "exists", "Pushed"))
                or status.startswith(("Mounted from", "Already"))):
            self.progress.done(key, status)
            self.current.pop(key, None)
            return None
        return msg


def pull_outcome(messages: list[dict[str, Any]]) -> tuple[str, bool]:
    """A pull's manifest digest and whether anything new came (its `Digest:` and
    `Status:` lines)."""
    digest, updated = "", False
    for msg in messages:
        text = str(msg.get("status", ""))
        if text.startswith("Digest: "):
            digest = text.removeprefix("Digest: ")
        elif text.startswith("Status: "):
            updated = text.startswith("Status: Downloaded newer image")
    return digest, updated


def push_outcome(messages: list[dict[str, Any]]) -> tuple[str, int]:
    """A push's manifest digest and size (its `aux` message)."""
    digest, size = "", 0
    for msg in messages:
        aux = msg.get("aux") or {}
        if aux.get("Digest"):
            digest, size = aux["Digest"], int(aux.get("Size") or 0)
    return digest, size
