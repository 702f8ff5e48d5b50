"""The container lifecycle: create, start, stop, kill, restart, pause, wait, remove.

The Engine owns the records (StateStore), the runtime (conmon + crun/runc), volumes and
events; the API handlers call it and nothing else. Runtime calls block (they run crun),
so they go to worker threads; each container's transitions are serialised by a lock.
Exits are learnt by the Monitor (monitor.py), which also applies restart policies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portside.engine import files as files_mod
from portside.engine import mounts as mounts_mod
from portside.engine import secretfiles
from portside.engine import spec as spec_mod
from portside.engine.errors import StartFailed
from portside.engine.events import EventBus
from portside.engine.images import ImageService
from portside.engine.imagetypes import NoSuchImage
from portside.engine.networking import NETWORKING_KEY
from portside.engine.secretfiles import SECRETS_KEY, SecretSource
from portside.engine.state import (
    Container,
    NoSuchContainer,
    StateStore,
    new_state,
    now_rfc3339,
)
from portside.engine.volumes import VolumeStore, tree_size
from portside.engine.waits import Waiters
from portside.errors import Conflict, ImageUnknown, InvalidArgument, PortsideError
from portside.oci import reference as refs
from portside.store.images import ImageStore

if TYPE_CHECKING:
    from portside.engine.imagepolicy import ImagePolicy
    from portside.engine.monitor import ExitReporter
    from portside.engine.networking import Networking
    from portside.runtime import Runtime

log = logging.getLogger("portside.engine")

_NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_ADJ = ("bold", "calm", "eager", "fond", "gentle", "happy", "keen", "lucid", "merry", "nifty",
        "quiet", "sharp", "tender", "vivid", "witty", "zen")
_NOUN = ("ada", "babbage", "curie", "darwin", "euler", "fermi", "gauss", "hopper", "kepler",
         "lovelace", "noether", "pascal", "ritchie", "shannon", "turing", "wozniak")


class NotRunning(Conflict):
    def __init__(self, c: Container) -> None:
        super().__init__(f"Container {c.id} is not running")


class Engine:
    """One host's engine. Its parts are passed in (`assembly.build_engine` makes the real
    ones), so each can be replaced in a test. `exits`, when given, is the managed mode: the
    engine reports each container exit to it instead of applying restart policies (the
    orchestrator decides what replaces a task)."""

    def __init__(self, root: Path, *, images: ImageStore, state: StateStore,
                 volumes: VolumeStore, runtime: Runtime, networks: Networking,
                 events: EventBus, default_runtime: str = "crun",
                 exits: ExitReporter | None = None,
                 secrets: SecretSource | None = None,
                 policy: ImagePolicy | None = None) -> None:
        from portside.engine.monitor import Monitor

        self.root = Path(root)
        self.default_runtime = default_runtime
        self.images = images
        self.state = state
        self.volumes = volumes
        self.runtime = runtime
        self.networks = networks
        self.events = events
        self.exits = exits
        # Per container managed mode: with a label set, only containers carrying it report
        # to `exits` (and have no restart policy of ours); the others keep theirs.
        self.managed_label: str | None = None
        # What daemon extensions add to `/info` (a swarm's state, say), each a few keys.
        self.info_parts: list[Callable[[], dict[str, Any]]] = []
        self.secrets: SecretSource = secrets or secretfiles.NoSecrets()
        self.policy = policy  # the image policy (trust layer); None checks nothing
        self.locks: dict[str, asyncio.Lock] = {}
        self.waits = Waiters()
        self.manual_stop: set[str] = set()
        self.pending_attach: dict[str, list[asyncio.Future[Any]]] = {}
        self.execs: dict[str, dict[str, Any]] = {}
        self.image_lock = threading.RLock()
        self.image_service = ImageService(self.images, self.events, self.image_lock,
                                          self._holder_running, policy)
        self.monitor = Monitor(self)
        for trash in (self.root / "containers").glob(".removed-*"):
            shutil.rmtree(trash, ignore_errors=True)

    def _discard_dir(self, path: Path) -> None:
        """Remove a container's dir (log, rw layer, files): renamed aside at once, deleted
        in a worker thread (an overlay work dir takes milliseconds per rmdir), so `rm` and
        `run --rm` do not wait for it. Leftovers of a crash go at the next daemon start."""
        trash = path.with_name(".removed-" + secrets.token_hex(8))
        try:
            path.rename(trash)
        except FileNotFoundError:
            return
        except OSError:
            trash = path
        try:
            asyncio.get_running_loop().run_in_executor(None, shutil.rmtree, trash, True)
        except RuntimeError:  # no loop (called from a thread): remove it here
            shutil.rmtree(trash, ignore_errors=True)

    def _holder_running(self, holder: str) -> bool:
        """Whether an image's holder is a running container (a build counts as running)."""
        try:
            return self.state.get(holder).running
        except NoSuchContainer:
            return True

    def lock(self, cid: str) -> asyncio.Lock:
        return self.locks.setdefault(cid, asyncio.Lock())

    def container_dir(self, cid: str) -> Path:
        return self.root / "containers" / cid

    def log_path(self, cid: str) -> Path:
        return self.container_dir(cid) / "ctr.log"

    def rw_dir(self, cid: str) -> Path:
        """The container's writable layer (`diff/`, `work/`): kept across stop/start and
        restart like Docker's, removed with the container."""
        return self.container_dir(cid) / "rw"

    def managed(self, c: Container) -> bool:
        """Whether the container's exits go to the orchestrator rather than to a restart
        policy."""
        if self.exits is None:
            return False
        return self.managed_label is None or self.managed_label in (
            c.config.get("Labels") or {})

    def event(self, c: Container, action: str, **extra: str) -> None:
        attrs = {**(c.config.get("Labels") or {}), "image": c.image, "name": c.name, **extra}
        self.events.publish("container", action, c.id, attrs)

    # -- lookups --

    def get(self, ref: str) -> Container:
        return self.state.get(ref)

    def _image(self, ref: str) -> Any:
        try:
            return self.images.get(ref)
        except ImageUnknown:
            raise NoSuchImage(ref) from None

    def lowerdirs(self, image_ref: str) -> list[Path]:
        """The image's layer snapshots, top-most first (unpacked on first use)."""
        from portside.store import rootfs

        with self.image_lock:
            image = self._image(image_ref)
            return [Path(p) for p in rootfs.prepare_image(self.images, image)]

    # -- create --

    def _name(self, name: str) -> str:
        if name:
            if not _NAME.match(name):
                raise InvalidArgument(f"Invalid container name ({name}), only"
                                      " [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
            return name.removeprefix("/")
        taken = self.state.names()
        while True:
            candidate = f"{secrets.choice(_ADJ)}_{secrets.choice(_NOUN)}"
            if candidate not in taken:
                return candidate

    def create(self, body: dict[str, Any], name: str = "") -> Container:
        """POST /containers/create: record a container (nothing runs until start).

        Runs in a worker thread; the image store's connection is shared, so its use is
        serialised (a layer unpack holds a transaction)."""
        if self.policy is not None and body.get("Image"):
            self.admit(str(body["Image"]))
        with self.image_lock:
            return self._create(body, name)

    def admit(self, given: str) -> None:
        """Ask the policy whether the image `given` (a name or an id) may start: judged by
        the name given when it is one of the image's tags, else by all of its tags."""
        assert self.policy is not None
        with self.image_lock:
            image = self._image(given)
        try:
            normal = str(refs.parse(given).with_default_tag())
        except InvalidArgument:
            normal = ""
        names = [normal] if normal in image.tags else list(image.tags)
        asyncio.run(self.policy.admit(names, image.index_digest or image.manifest_digest))

    def _create(self, body: dict[str, Any], name: str) -> Container:
        from portside.engine.validate import check_create

        check_create(body)
        name = self._name(name)
        if not body.get("Image"):
            raise InvalidArgument("config error: an image is required")
        with contextlib.suppress(NoSuchContainer):
            holder = self.state.get(name)
            if holder.name == name:
                from portside.engine.state import NameInUse

                raise NameInUse(name, holder.id)
        image = self._image(body["Image"])
        image_config = self.images.config(image).config
        config = spec_mod.merge_config(body, image_config)
        host_config = dict(body.get("HostConfig") or {})
        if host_config.get("NetworkMode") == "host" and not config.get("Hostname"):
            import socket

            config["Hostname"] = socket.gethostname()  # Docker: the host's name with its stack
        spec_mod.process_args(config)
        spec_mod.cpu_quota(host_config)
        if body.get("NetworkingConfig"):
            host_config[NETWORKING_KEY] = body["NetworkingConfig"]  # endpoints of start
        mode = str(host_config.get("NetworkMode") or "")
        if mode.startswith("container:"):  # Docker keeps the other container's full id
            host_config["NetworkMode"] = "container:" + self.get(mode.partition(":")[2]).id
        restart = (host_config.get("RestartPolicy") or {}).get("Name") or "no"
        if host_config.get("AutoRemove") and restart not in ("", "no"):
            raise InvalidArgument("can't create 'AutoRemove' container with restart policy")
        if host_config.get(SECRETS_KEY):  # references only, checked now (as Docker's)
            host_config[SECRETS_KEY] = secretfiles.normalise(host_config[SECRETS_KEY],
                                                             self.secrets)
        specs = mounts_mod.requested(host_config, config.get("Volumes"))
        mounts_mod.check_sources(specs)
        cid = secrets.token_hex(32)
        lowerdirs = self.lowerdirs(body["Image"]) if any(
            s.type == "volume" and not s.nocopy for s in specs) else []
        c = Container(cid, name, now_rfc3339(), body["Image"], image.id, config, host_config,
                      new_state(), [], 0, host_config.get("Runtime") or self.default_runtime)
        self.state.add(c)  # the name check that counts (names/<name>, created only if absent)
        try:
            c.mounts = mounts_mod.resolve(specs, self.volumes, lowerdirs)
            self.images.lease(cid, image)
            self.container_dir(cid).mkdir(parents=True, exist_ok=True, mode=0o700)
            self.state.save(c)
        except BaseException:
            self.state.remove(cid)
            self.images.release(cid)
            raise
        self.event(c, "create")
        return c

    # -- start --

    async def start(self, ref: str) -> bool:
        """Start a created or exited container; False when it was already running (304)."""
        c = self.get(ref)
        async with self.lock(c.id):
            c = self.get(c.id)
            if c.state["Paused"]:
                raise Conflict("cannot start a paused container, try unpause instead")
            if c.running:
                return False
            self.manual_stop.discard(c.id)
            try:
                await self._start(c)
            except PortsideError:
                if c.host_config.get("AutoRemove"):
                    await self._remove(self.get(c.id), volumes=True)
                raise
        return True

    async def _start(self, c: Container) -> None:
        from portside.engine.networking import uses_bridge
        from portside.runtime import CommandNotExecutable, CommandNotFound, RuntimeFailed

        lowerdirs = await asyncio.to_thread(self.lowerdirs, c.image_id)
        netns: str | None = None
        files: dict[str, str] = {}
        attach: Callable[[], object] | None = None
        secret_dir: Path | None = None
        config = c.config
        mode = c.host_config.get("NetworkMode") or "default"
        try:
            if mode.startswith("container:"):
                netns, files, hostname = self.networks.joined(self, mode.partition(":")[2])
                config = {**config, "Hostname": config.get("Hostname") or hostname}
            elif uses_bridge(c) or mode == "host":
                self.container_dir(c.id).mkdir(parents=True, exist_ok=True, mode=0o700)
                netns, files, attach = await asyncio.to_thread(self.networks.setup, c,
                                                               self.container_dir(c.id))
            extra = []
            if c.host_config.get(SECRETS_KEY):
                try:
                    secret_dir = await asyncio.to_thread(
                        secretfiles.populate, self.root, c.id,
                        c.host_config[SECRETS_KEY], self.secrets,
                        secretfiles.mount_points(c.mounts))
                except PortsideError as exc:  # inspect shows why it did not start
                    c.state.update(Error=str(exc))
                    self.state.save(c)
                    raise
                extra.append(secretfiles.mount(secret_dir))
            spec = spec_mod.runtime_spec(
                c.id, c.name, config, c.host_config, lowerdirs,
                files_mod.etc_mounts(self.container_dir(c.id), c, files)
                + mounts_mod.runtime_mounts(c.mounts) + extra,
                self.log_path(c.id), c.runtime, network_namespace=netns)
            spec.rw_dir = self.rw_dir(c.id)
        except BaseException:
            if secret_dir is not None:
                secretfiles.release(secret_dir)
            await asyncio.to_thread(self.networks.teardown, c)
            raise
        # The namespace's wiring (CNI, firewall, DNS) runs while the runtime creates the
        # container, which needs only the namespace and the files to exist: the process
        # starts after both. A network error is the start's error, as before.
        create = asyncio.ensure_future(asyncio.to_thread(self._runtime_create, spec, secret_dir))
        if attach is not None:
            try:
                await asyncio.to_thread(attach)
            except BaseException:
                with contextlib.suppress(BaseException):
                    await create
                await asyncio.to_thread(self._runtime_delete, c.id)
                await asyncio.to_thread(self.networks.teardown, c)
                raise
        try:
            await create
            try:
                await self._connect_pending_attach(c.id)
                await asyncio.to_thread(self.runtime.start, c.id)
            except BaseException:
                await asyncio.to_thread(self._runtime_delete, c.id)
                raise
        except (CommandNotFound, CommandNotExecutable, RuntimeFailed, PortsideError) as exc:
            code = 127 if isinstance(exc, CommandNotFound) else 126 if isinstance(
                exc, CommandNotExecutable) else 128
            for fut in self.pending_attach.pop(c.id, []):
                if not fut.done():
                    fut.set_exception(StartFailed(str(exc)))
            message = self._start_error(c, exc)
            c.state.update(ExitCode=code, Error=message, Running=False, Status=(
                "created" if c.state["StartedAt"].startswith("0001") else "exited"))
            self.state.save(c)
            await asyncio.to_thread(self._runtime_delete, c.id)
            await asyncio.to_thread(self.networks.teardown, c)
            err = StartFailed(message)
            err.exit_code = code if code != 128 else 125
            raise err from None
        st = await asyncio.to_thread(self.runtime.state, c.id)
        c.state.update(Status="running", Running=True, Paused=False, Restarting=False,
                       OOMKilled=False, Dead=False, Pid=st.pid, ExitCode=0, Error="",
                       StartedAt=now_rfc3339())
        self.state.save(c)
        self.event(c, "start")
        self.monitor.watch(c)

    def _runtime_create(self, spec: Any, secret_dir: Path | None = None) -> None:
        """Create the container; a secrets tmpfs bound into it is detached from the host
        once the container's namespace holds it (or the create failed)."""
        try:
            self._create_in_runtime(spec)
        finally:
            if secret_dir is not None:
                secretfiles.release(secret_dir)

    def _create_in_runtime(self, spec: Any) -> None:
        self._runtime_delete(spec.id)  # the last run's; its log and rw layer stay
        self.runtime.create(spec)

    async def _connect_pending_attach(self, cid: str) -> None:
        """Attach clients waiting for a start connect after create, before the process runs,
        so they miss no output (conmon is up; the runtime holds the process until start)."""
        from portside.runtime.conmon import connect_attach

        pending = self.pending_attach.pop(cid, [])
        if not pending:
            return
        path = await asyncio.to_thread(self.runtime.attach_socket, cid)
        for fut in pending:
            if not fut.done():
                try:
                    fut.set_result(connect_attach(path))
                except OSError as exc:
                    fut.set_exception(exc)

    async def attach_socket(self, cid: str) -> Any:
        """A connection to the container's conmon attach socket (after its next start when
        it is not running)."""
        from portside.runtime.conmon import connect_attach

        c = self.get(cid)
        if c.running:
            path = await asyncio.to_thread(self.runtime.attach_socket, cid)
            return connect_attach(path)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending_attach.setdefault(cid, []).append(fut)
        return await fut

    def _runtime_delete(self, cid: str) -> None:
        from portside.runtime import ContainerUnknown

        with contextlib.suppress(ContainerUnknown):
            self.runtime.delete(cid, force=True)

    @staticmethod
    def _start_error(c: Container, exc: Exception) -> str:
        from portside.runtime import CommandNotExecutable, CommandNotFound

        argv0 = (spec_mod.process_args(c.config) or [""])[0]
        if isinstance(exc, CommandNotFound):
            return (f"failed to create task for container: exec: \"{argv0}\": executable file"
                    " not found in $PATH: unknown")
        if isinstance(exc, CommandNotExecutable):
            return (f"failed to create task for container: exec: \"{argv0}\": permission"
                    " denied: unknown")
        return f"failed to create task for container: {exc}"

    # -- stop, kill, restart, pause --

    async def stop(self, ref: str, timeout: int | None = None, signal: str | None = None
                   ) -> bool:
        """Stop signal, then SIGKILL after the timeout; False when not running (304)."""
        c = self.get(ref)
        self.manual_stop.add(c.id)
        self.monitor.cancel_restart(c.id)
        if not c.running:
            if c.state["Restarting"]:
                c.state.update(Restarting=False, Status="exited")
                self.state.save(c)
            return False
        if timeout is None:
            timeout = int(c.config.get("StopTimeout", 10))
        sig = signal or c.config.get("StopSignal") or "SIGTERM"
        if c.state["Paused"]:
            await asyncio.to_thread(self.runtime.resume, c.id)
        exited = self.monitor.exited(c.id)
        await asyncio.to_thread(self.runtime.stop, c.id, timeout if timeout >= 0 else 1e9, sig)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(exited), 30)
        self.event(self.get(c.id), "stop")
        return True

    async def kill(self, ref: str, signal: str = "SIGKILL") -> None:
        from portside.engine.options import parse_signal

        c = self.get(ref)
        number = parse_signal(signal)
        if not c.running:
            raise NotRunning(c)
        # Docker (daemon/kill.go): a SIGKILL returns once the container has stopped, so a
        # client can remove it right after; other signals return when sent (and a frozen,
        # paused container dies only when thawed)
        exited = self.monitor.exited(c.id) if number == 9 and not c.state["Paused"] else None
        await asyncio.to_thread(self.runtime.kill, c.id, signal)
        self.event(c, "kill", signal=str(number))
        if exited is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(exited), 30)

    async def restart(self, ref: str, timeout: int | None = None) -> None:
        c = self.get(ref)
        await self.stop(c.id, timeout)
        await self.start(c.id)
        self.event(self.get(c.id), "restart")

    async def pause(self, ref: str) -> None:
        c = self.get(ref)
        if not c.running:
            raise NotRunning(c)
        if c.state["Paused"]:
            raise Conflict(f"Container {c.id} is already paused")
        await asyncio.to_thread(self.runtime.pause, c.id)
        c.state.update(Paused=True, Status="paused")
        self.state.save(c)
        self.event(c, "pause")

    async def unpause(self, ref: str) -> None:
        c = self.get(ref)
        if not c.state["Paused"]:
            raise Conflict(f"Container {c.id} is not paused")
        await asyncio.to_thread(self.runtime.resume, c.id)
        c.state.update(Paused=False, Status="running")
        self.state.save(c)
        self.event(c, "unpause")

    # -- wait --

    def register_wait(self, ref: str, condition: str = "not-running"
                      ) -> asyncio.Future[dict[str, Any]]:
        return self.waits.register(self.get(ref), condition)

    def notify_waiters(self, c: Container, removed: bool = False) -> None:
        self.waits.notify(c, removed)

    # -- remove --

    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        c = self.get(ref)
        if c.running or c.state["Restarting"]:
            if not force:
                raise Conflict(f"cannot remove container \"/{c.name}\": container is running:"
                               " stop the container before removing or force remove")
            self.manual_stop.add(c.id)
            self.monitor.cancel_restart(c.id)
            if c.running:
                exited = self.monitor.exited(c.id)
                with contextlib.suppress(PortsideError):
                    if c.state["Paused"]:
                        await asyncio.to_thread(self.runtime.resume, c.id)
                    await asyncio.to_thread(self.runtime.kill, c.id, "SIGKILL")
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(exited), 30)
        async with self.lock(c.id):
            try:
                current = self.get(c.id)
            except NoSuchContainer:
                return  # removed meanwhile (its --rm, a concurrent rm)
            await self._remove(current, volumes)

    async def _remove(self, c: Container, volumes: bool) -> None:
        self.monitor.forget(c.id)
        await asyncio.to_thread(self._runtime_delete, c.id)
        await asyncio.to_thread(self.networks.teardown, c)
        self._discard_dir(self.container_dir(c.id))
        with self.image_lock:
            self.images.release(c.id)
        self.state.remove(c.id)
        if volumes:
            for m in c.mounts:
                if m["Type"] == "volume" and self.volumes.is_anonymous(m["Name"]):
                    with contextlib.suppress(PortsideError):
                        self.volumes.remove(m["Name"], self.volume_users(m["Name"]))
        self.locks.pop(c.id, None)
        self.manual_stop.discard(c.id)
        for fut in self.pending_attach.pop(c.id, []):
            fut.cancel()
        self.event(c, "destroy")
        self.notify_waiters(c, removed=True)

    async def prune(self, filters: dict[str, list[str]] | None = None) -> dict[str, Any]:
        from portside.engine.query import matches
        deleted, reclaimed = [], 0
        for c in self.state.all():
            if c.running or c.state["Restarting"] or c.state["Paused"]:
                continue
            if filters and not matches(c, {k: v for k, v in filters.items()
                                            if k in ("label", "until")}):
                continue
            size = await asyncio.to_thread(tree_size, self.rw_dir(c.id) / "diff")
            await self.remove(c.id)
            deleted.append(c.id)
            reclaimed += size
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    def volume_users(self, name: str) -> list[str]:
        return [c.id for c in self.state.all()
                if any(m["Type"] == "volume" and m.get("Name") == name for m in c.mounts)]

    # -- the daemon's start and stop --

    def uptime_of(self, c: Container) -> float:
        from portside.engine.state import parse_rfc3339

        return max(0.0, time.time() - parse_rfc3339(c.state["StartedAt"]))

