"""Work the Docker API handlers and the in-process engine (`engine.local`) both do beyond
one Engine call: a listing's filters, the documents shaped as Docker's, commit's pause, a
log's window, the volume operations with their events, an event watch with replay.

Each is a plain function of the Engine; the handlers parse the HTTP request and write the
answer around it, `LocalEngine` calls it from its dataclass options. Functions marked
"on the loop" must run on the engine's event loop; the others block (worker threads).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncGenerator, Generator
from typing import Any

from portside.engine import disk, query
from portside.engine import events as events_mod
from portside.engine.containers import Engine
from portside.engine.options import parse_time_or_duration
from portside.engine.state import Container, parse_rfc3339
from portside.errors import InvalidArgument, PortsideError
from portside.network.operations import ContainerRef

# -- containers --

def _list_filters(engine: Engine, filters: dict[str, list[str]]
                  ) -> tuple[dict[str, list[str]], float, float]:
    """Check the keys; networks given by id become names; `before` and `since` (container
    names or ids) become the bounds of the creation time."""
    for key in filters:
        if key not in query.LIST_FILTERS:
            raise InvalidArgument(f"invalid filter '{key}'")
    if "network" in filters:
        names = set(filters["network"])
        for ref in filters["network"]:
            with contextlib.suppress(PortsideError):
                names.add(engine.networks.manager.get(ref).name)
        filters = {**filters, "network": sorted(names)}
    before = min((parse_rfc3339(engine.get(r).created) for r in filters.get("before", [])),
                 default=float("inf"))
    since = max((parse_rfc3339(engine.get(r).created) for r in filters.get("since", [])),
                default=float("-inf"))
    return filters, before, since


def container_list(engine: Engine, filters: dict[str, list[str]], show_all: bool,
                   limit: int) -> list[dict[str, Any]]:
    """`GET /containers/json` without sizes (on the loop): running ones unless `show_all`,
    a `status` filter, `before` or `since`; `limit` > 0 keeps the first ones."""
    filters, before, since = _list_filters(engine, filters)
    show_all = show_all or "before" in filters or "since" in filters
    out = []
    for c in engine.state.all():
        if not show_all and not c.running and "status" not in filters:
            continue
        if not since < parse_rfc3339(c.created) < before:
            continue
        if query.matches(c, filters):
            settings = engine.networks.settings(c) if c.running else None
            out.append(query.summary(c, engine.networks.ports(c),
                                     (settings or {}).get("Networks")))
    if limit > 0:
        out = out[:limit]
    return out


def add_sizes(engine: Engine, docs: list[dict[str, Any]]) -> None:
    """`docker ps -s`: each listed container's SizeRw and SizeRootFs (blocks)."""
    for doc in docs:
        doc.update(disk.container_sizes(engine, engine.get(doc["Id"])))


def container_inspect(engine: Engine, c: Container, size: bool = False) -> dict[str, Any]:
    """`GET /containers/{id}/json` (blocks: the network settings are read from netavark's
    records)."""
    settings = engine.networks.settings(c)
    doc = query.inspect(c, str(engine.log_path(c.id)), settings)
    # Docker lists the container's exec instances that have not exited (it drops an
    # exec from the container at its exit; /exec/{id}/json still answers for it)
    doc["ExecIDs"] = [i for i, e in list(engine.execs.items())
                      if e["ContainerID"] == c.id and e["ExitCode"] is None] or None
    if size:
        doc.update(disk.container_sizes(engine, c))
    return doc


async def commit(engine: Engine, ref: str, name: str | None, comment: str, author: str,
                 config: dict[str, Any] | None, pause: bool, changes: list[str]) -> str:
    """`POST /commit` (on the loop): Docker's `changes` (ENV, LABEL, CMD...) checked before
    anything is written; a running container paused meanwhile unless `pause` is false;
    returns the new image's ID."""
    from portside.engine import commit as commit_mod
    from portside.engine.imageimport import apply_changes

    apply_changes({}, changes)  # a bad instruction is a 400 before anything is written
    c = engine.get(ref)
    paused = False
    if c.running and pause and not c.state["Paused"]:
        await engine.pause(c.id)
        paused = True
    try:
        image_id = await asyncio.to_thread(commit_mod.commit, engine, c, name, comment,
                                           author, config, changes)
    finally:
        if paused:
            await engine.unpause(c.id)
    engine.event(c, "commit")
    return image_id


def top(engine: Engine, c: Container) -> dict[str, Any]:
    """`GET /containers/{id}/top` (blocks): the processes of a running container."""
    from portside.engine.containers import NotRunning
    from portside.engine.metrics import top_table

    if not c.running:
        raise NotRunning(c)
    return top_table(engine, c)


def resize(engine: Engine, ref: str, rows: int, cols: int) -> None:
    """A running container's TTY to `rows` x `cols` (blocks); otherwise nothing."""
    c = engine.get(ref)
    if c.running and rows and cols:
        engine.runtime.resize(c.id, rows, cols)


async def stats(engine: Engine, c: Container, stream: bool, one_shot: bool
                ) -> AsyncGenerator[dict[str, Any], None]:
    """`GET /containers/{id}/stats` (on the loop): a sample a second while `stream` and the
    container runs, else one; CPU figures are deltas from a sample before it, except
    `one_shot`'s (no wait, no delta)."""
    from portside.engine.metrics import docker_stats

    prev = None if one_shot else await asyncio.to_thread(docker_stats, engine, c, None)
    while True:
        if not one_shot:
            await asyncio.sleep(1.0 if stream else 0.5)
        doc = await asyncio.to_thread(docker_stats, engine, engine.get(c.id), prev)
        yield doc
        prev = doc
        if not stream or not engine.get(c.id).running:
            return


def container_ref(engine: Engine, ref: str) -> ContainerRef:
    """What the network operations need of a container (connect, disconnect)."""
    from portside.engine.networking import owns_netns
    from portside.engine.spec import default_hostname

    c = engine.get(ref)
    netns = None
    if c.running and owns_netns(c):
        from portside.network import containers as glue

        path = glue.netns_path(c.id)
        netns = str(path) if path.exists() else None
    return ContainerRef(c.id, c.name, default_hostname(c.id, c.config), netns,
                        engine.container_dir(c.id),
                        lambda net, cfg: engine.networks.remember(engine, c.id, net, cfg))


# -- logs --

def log_window(since: str | None, until: str | None, tail: str | None
               ) -> tuple[float | None, float | None, int | None]:
    """Docker's `since` (unix time), `until` (a time or a duration) and `tail` ("all" or N)."""
    now = time.time()
    since_t = float(since or 0) or None
    until_t = parse_time_or_duration(until, now) if until else None
    tail_text = tail or "all"
    return since_t, until_t, None if tail_text == "all" else int(tail_text)


def check_log_streams(stdout: bool, stderr: bool) -> None:
    if not (stdout or stderr):
        raise InvalidArgument("you must choose at least one stream")


def log_chunks(engine: Engine, c: Container, *, stdout: bool, stderr: bool,
               timestamps: bool, since: float | None, until: float | None,
               tail: int | None, follow: bool, gone: threading.Event
               ) -> Generator[tuple[int, bytes], None, None]:
    """The log's (stream, data) pieces as `GET /containers/{id}/logs` sends them (blocks);
    following ends when the container stops or is removed, or when `gone` is set."""
    from portside.engine.streams import STDERR, STDOUT
    from portside.runtime import read_logs

    check_log_streams(stdout, stderr)

    def stop() -> bool:
        if gone.is_set():
            return True
        try:
            return not engine.get(c.id).running
        except Exception:  # noqa: BLE001 - removed: stop following
            return True

    for entry in read_logs(engine.log_path(c.id), since, until, tail, follow, stop):
        if gone.is_set():
            return
        stream = STDERR if entry.stream == "stderr" else STDOUT
        if (stream == STDOUT and not stdout) or (stream == STDERR and not stderr):
            continue
        yield stream, (entry.timestamp.encode() + b" " + entry.data) if timestamps \
            else entry.data


# -- volumes --

def _volume_labels_match(v: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    """Docker's `label` (key or key=value, all must hold) and `label!` (none may) filters."""
    labels = v.get("Labels") or {}

    def has(item: str) -> bool:
        key, eq, value = item.partition("=")
        return key in labels and (not eq or labels[key] == value)

    return all(has(i) for i in filters.get("label", [])) and not any(
        has(i) for i in filters.get("label!", []))


def volume_list(engine: Engine, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
    """`GET /volumes`' volumes: filtered by dangling, name, driver, label and label!."""
    out = []
    for v in engine.volumes.list():
        users = engine.volume_users(v["Name"])
        if "dangling" in filters and (filters["dangling"][0] in ("true", "1")) == bool(users):
            continue
        if "name" in filters and not any(n in v["Name"] for n in filters["name"]):
            continue
        if "driver" in filters and v["Driver"] not in filters["driver"]:
            continue
        if not _volume_labels_match(v, filters):
            continue
        out.append(v)
    return out


def volume_create(engine: Engine, body: dict[str, Any]) -> dict[str, Any]:
    """`POST /volumes/create` from Docker's body (Name, Driver, Labels)."""
    driver = body.get("Driver") or "local"
    if driver != "local":
        raise InvalidArgument(f"volume driver {driver!r} is not supported (only local)")
    doc, new = engine.volumes.create(body.get("Name") or "", body.get("Labels") or {})
    if new:
        engine.events.publish("volume", "create", doc["Name"], {"driver": "local"})
    return doc


def volume_remove(engine: Engine, name: str, force: bool) -> None:
    engine.volumes.remove(name, engine.volume_users(name), force)
    engine.events.publish("volume", "destroy", name, {"driver": "local"})


def volume_prune(engine: Engine, filters: dict[str, list[str]],
                 api_version: str | None = None) -> dict[str, Any]:
    """Docker (API >= 1.42) prunes only anonymous volumes unless `all=true` is filtered;
    a client of an older API (Docker 20.10's is 1.41) gets every unused volume pruned."""
    everything = (filters.get("all") or ["false"])[0] in ("true", "1")
    if api_version and tuple(int(p) for p in api_version.split(".")) < (1, 42):
        everything = True
    deleted, reclaimed = [], 0
    for v in engine.volumes.list():
        name = v["Name"]
        if engine.volume_users(name):
            continue
        if not everything and not engine.volumes.is_anonymous(name):
            continue
        if not _volume_labels_match(v, filters):
            continue
        reclaimed += engine.volumes.size(name)
        engine.volumes.remove(name, [])
        engine.events.publish("volume", "destroy", name, {"driver": "local"})
        deleted.append(name)
    return {"VolumesDeleted": deleted or None, "SpaceReclaimed": reclaimed}


# -- events --

class EventWatch:
    """Docker's `since`/`until`/`filters`, plus portside's `after`: the kept events whose
    `revision` is greater than it (the last one a client saw) replayed before live ones;
    `Compacted` (410) if some of them have been discarded, raised when the watch is made.
    Made, iterated and closed on the loop."""

    def __init__(self, engine: Engine, since: str | None, until: str | None,
                 after: str | None, filters: dict[str, list[str]]) -> None:
        now = time.time()
        self.since = parse_time_or_duration(since, now) if since else None
        self.until = parse_time_or_duration(until, now) if until else None
        if after is not None and not after.isdigit():
            raise InvalidArgument(f"after_revision must be a revision number, got {after!r}")
        self.filters = filters
        self.bus = engine.events
        self.queue = self.bus.subscribe()  # before reading the kept ones: nothing in between
        try:
            self.replay: list[dict[str, Any]] = []
            if after is not None:
                self.replay = self.bus.after(int(after))
                if self.since is not None:
                    self.replay = [e for e in self.replay if e["timeNano"] >= self.since * 1e9]
            elif self.since is not None:
                self.replay = self.bus.since(self.since)
        except BaseException:
            self.close()
            raise

    async def stream(self) -> AsyncGenerator[dict[str, Any], None]:
        """The replayed events, then the live ones until `until` (or for ever)."""
        until = self.until
        last = 0  # the revision last sent: a live event already replayed is not sent again
        for e in self.replay:
            if until is not None and e["timeNano"] >= until * 1e9:
                return
            last = e["revision"]
            if events_mod.matches(e, self.filters):
                yield e
        while until is None or time.time() < until:
            timeout = None if until is None else max(0.0, until - time.time())
            try:
                e = await asyncio.wait_for(self.queue.get(), timeout)
            except TimeoutError:
                return
            if until is not None and e["timeNano"] >= until * 1e9:
                return
            if e["revision"] <= last:
                continue
            last = e["revision"]
            if events_mod.matches(e, self.filters):
                yield e

    def close(self) -> None:
        self.bus.unsubscribe(self.queue)
