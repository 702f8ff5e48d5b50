"""Learns of container exits and applies restart policies.

Each running container's init process is watched through a pidfd registered with the
event loop (no thread and no polling per container); when it becomes readable the
process has exited, and conmon's exit file gives the status. Then the record is updated,
`die` is published, waiters are woken, `--rm` containers are removed, and restart policies
(no, on-failure[:N], always, unless-stopped) restart with Docker's backoff: 100 ms doubling
per restart, capped at one minute, reset after a run of 10 seconds or more.

In managed mode (the engine was given an `ExitReporter`) no restart policy is applied to a
managed container (every container, or with `engine.managed_label` set only those that
carry it: the orchestrator's tasks), neither at an exit nor at the daemon's start: each
exit is reported as a `TaskExit` and the orchestrator decides what happens next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from portside.engine.state import Container, now_rfc3339
from portside.errors import PortsideError

if TYPE_CHECKING:
    from portside.engine.containers import Engine
    from portside.runtime import ContainerState

log = logging.getLogger("portside.monitor")

BACKOFF_START = 0.1
BACKOFF_MAX = 60.0
RESET_AFTER = 10.0


@dataclass(frozen=True)
class TaskExit:
    """A container's exit, as the managed mode reports it."""

    container_id: str
    name: str
    exit_code: int
    oom_killed: bool
    labels: dict[str, str]
    finished_at: str


ExitReporter: TypeAlias = Callable[[TaskExit], Awaitable[None] | None]


class Monitor:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.fds: dict[str, int] = {}
        self.next_exit: dict[str, asyncio.Future[None]] = {}
        self.restarts: dict[str, asyncio.Task[None]] = {}
        self.backoff: dict[str, float] = {}
        self.tasks: set[asyncio.Task[Any]] = set()

    def exited(self, cid: str) -> asyncio.Future[None]:
        """A future done when the container's next exit has been recorded."""
        fut = self.next_exit.get(cid)
        if fut is None or fut.done():
            fut = asyncio.get_running_loop().create_future()
            self.next_exit[cid] = fut
        return fut

    def watch(self, c: Container) -> None:
        loop = asyncio.get_running_loop()
        self._unwatch(c.id)
        try:
            fd = os.pidfd_open(int(c.state["Pid"]))
        except (ProcessLookupError, ValueError, OSError):
            self._spawn(self._on_exit(c.id))
            return
        self.fds[c.id] = fd
        loop.add_reader(fd, self._fired, c.id)
        from portside.engine.health import start_health

        start_health(self.engine, c)

    def _unwatch(self, cid: str) -> None:
        fd = self.fds.pop(cid, None)
        if fd is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)

    def _fired(self, cid: str) -> None:
        self._unwatch(cid)
        self._spawn(self._on_exit(cid))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _on_exit(self, cid: str) -> None:
        from portside.engine.health import stop_health

        engine = self.engine
        stop_health(cid)
        try:
            code = await asyncio.to_thread(engine.runtime.wait, cid, 10)
            st = await asyncio.to_thread(engine.runtime.state, cid)
            oom = st.oom_killed
        except Exception as exc:  # noqa: BLE001 - a vanished runtime dir still means "exited"
            log.warning("exit status of %s: %s", cid[:12], exc)
            code, oom = 255, False
        try:
            c = engine.get(cid)
        except PortsideError:
            return
        ran = engine.uptime_of(c)
        c.state.update(Running=False, Paused=False, Restarting=False, Status="exited",
                       ExitCode=int(code), Pid=0, FinishedAt=now_rfc3339(), OOMKilled=oom)
        if c.state.get("Health"):
            c.state["Health"]["Status"] = "unhealthy"
        engine.state.save(c)
        if oom:
            engine.event(c, "oom")
        engine.event(c, "die", exitCode=str(code))  # then the network's disconnect, as Docker
        await asyncio.to_thread(engine.networks.teardown, c)
        fut = self.next_exit.pop(cid, None)
        if fut is not None and not fut.done():
            fut.set_result(None)
        engine.notify_waiters(c)
        if engine.managed(c):
            await self._report(c)
        if c.host_config.get("AutoRemove"):
            with contextlib.suppress(PortsideError):
                await engine.remove(cid, volumes=True)
            return
        if self._should_restart(c):
            delay = self.backoff.get(cid, 0.0)
            delay = BACKOFF_START if ran >= RESET_AFTER or not delay else min(delay * 2,
                                                                              BACKOFF_MAX)
            self.backoff[cid] = delay
            c.state.update(Restarting=True, Status="restarting")
            engine.state.save(c)
            self.restarts[cid] = asyncio.get_running_loop().create_task(
                self._restart_later(cid, delay))

    async def _report(self, c: Container) -> None:
        assert self.engine.exits is not None
        exit_ = TaskExit(c.id, c.name, int(c.state["ExitCode"]), bool(c.state["OOMKilled"]),
                         dict(c.config.get("Labels") or {}), str(c.state["FinishedAt"]))
        try:
            result = self.engine.exits(exit_)
            if result is not None:
                await result
        except Exception:  # a failing reporter must not stop the monitor
            log.exception("reporting the exit of %s failed", c.id[:12])

    def _should_restart(self, c: Container) -> bool:
        if self.engine.managed(c):
            return False  # managed: the orchestrator decides
        if c.id in self.engine.manual_stop:
            return False
        policy = c.host_config.get("RestartPolicy") or {}
        name = policy.get("Name") or "no"
        if name in ("always", "unless-stopped"):
            return True
        if name == "on-failure" and c.state["ExitCode"] != 0:
            limit = int(policy.get("MaximumRetryCount") or 0)
            return limit == 0 or c.restart_count < limit
        return False

    async def _restart_later(self, cid: str, delay: float) -> None:
        await asyncio.sleep(delay)
        engine = self.engine
        self.restarts.pop(cid, None)
        try:
            async with engine.lock(cid):
                c = engine.get(cid)
                if not c.state["Restarting"]:
                    return
                c.restart_count += 1
                engine.state.save(c)
                await engine._start(c)  # noqa: SLF001 - the monitor is part of the engine
        except PortsideError as exc:
            log.warning("restart of %s failed: %s", cid[:12], exc)
            with contextlib.suppress(PortsideError):
                c = engine.get(cid)
                c.state.update(Restarting=False, Status="exited")
                engine.state.save(c)

    def cancel_restart(self, cid: str) -> None:
        task = self.restarts.pop(cid, None)
        if task is not None:
            task.cancel()

    def forget(self, cid: str) -> None:
        self.cancel_restart(cid)
        self._unwatch(cid)
        self.backoff.pop(cid, None)
        from portside.engine.health import stop_health

        stop_health(cid)

    async def recover(self) -> None:
        """Daemon start: re-adopt containers still running (live-restore), record those that
        exited while the daemon was away, and start those with restart policy always (and
        unless-stopped unless they were stopped by hand)."""
        engine = self.engine
        states: dict[str, ContainerState | None] = {}
        for c in engine.state.all():
            try:
                states[c.id] = await asyncio.to_thread(engine.runtime.state, c.id)
            except PortsideError:
                states[c.id] = None
        live = [cid for cid, st in states.items()
                if st is not None and st.status in ("running", "paused")]
        # Endpoints of containers that died (or were removed) while no daemon ran.
        await asyncio.to_thread(engine.networks.recover, live)
        for c in engine.state.all():
            st = states.get(c.id)
            if st is not None and st.status in ("running", "paused"):
                c.state.update(Running=True, Paused=st.status == "paused", Pid=st.pid,
                               Status=st.status, Restarting=False)
                engine.state.save(c)
                self.watch(c)
                continue
            await asyncio.to_thread(engine.networks.teardown, c)
            was_running = c.running or c.state["Restarting"]
            if c.running:
                code = st.exit_code if st is not None and st.exit_code is not None else 255
                c.state.update(Running=False, Paused=False, Restarting=False, Status="exited",
                               ExitCode=code, Pid=0, FinishedAt=now_rfc3339(),
                               OOMKilled=bool(st and st.oom_killed))
                engine.state.save(c)
                if engine.managed(c):
                    await self._report(c)
            if engine.managed(c):
                continue  # managed: no restart policy of our own
            policy = (c.host_config.get("RestartPolicy") or {}).get("Name") or "no"
            if policy == "always" or (policy == "unless-stopped" and was_running) or (
                    policy == "on-failure" and was_running and c.state["ExitCode"] != 0):
                try:
                    async with engine.lock(c.id):
                        await engine._start(c)  # noqa: SLF001
                except PortsideError as exc:
                    log.warning("restart of %s failed: %s", c.name, exc)

    def close(self) -> None:
        for cid in list(self.fds):
            self._unwatch(cid)
        for task in list(self.restarts.values()):
            task.cancel()
