"""Health checks: the HEALTHCHECK of the image or the flags, probed with the runtime's exec.

One asyncio task per running container with a check. Docker's rules: the first probe
comes after `Interval` (or `StartInterval` during the start period); failures during
`StartPeriod` do not count until a probe succeeds; `Retries` consecutive failures make it
`unhealthy`; a probe over `Timeout` fails. The last five probes are kept in State.Health.Log.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import time
from typing import TYPE_CHECKING, Any

from portside.engine.state import Container, now_rfc3339, parse_rfc3339
from portside.errors import PortsideError

if TYPE_CHECKING:
    from portside.engine.containers import Engine

DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
DEFAULT_START_INTERVAL = 5.0
MAX_OUTPUT = 4096
KEEP_LOG = 5

_tasks: dict[str, asyncio.Task[None]] = {}


def _seconds(ns: Any, default: float) -> float:
    return int(ns) / 1e9 if ns else default


def probe_args(test: list[str]) -> list[str] | None:
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])]
    if test[0] == "CMD":
        return list(test[1:]) or None
    return list(test)


def start_health(engine: Engine, c: Container) -> None:
    check = c.config.get("Healthcheck") or {}
    args = probe_args(check.get("Test") or [])
    if args is None:
        return
    stop_health(c.id)
    fresh = engine.get(c.id)
    fresh.state["Health"] = {"Status": "starting", "FailingStreak": 0, "Log": []}
    engine.state.save(fresh)
    _tasks[c.id] = asyncio.get_running_loop().create_task(_loop(engine, c.id, check, args))


def stop_health(cid: str) -> None:
    task = _tasks.pop(cid, None)
    if task is not None:
        task.cancel()


def _run_probe(engine: Engine, c: Container, args: list[str], timeout: float
               ) -> tuple[int, str]:
    proc = engine.runtime.exec(c.id, args, env=c.config.get("Env") or [],
                               user=c.config.get("User") or "",
                               cwd=c.config.get("WorkingDir") or "")
    out = bytearray()
    streams = [f for f in (proc.stdout, proc.stderr) if f is not None]
    fds = {f.fileno(): f for f in streams}
    deadline = time.monotonic() + timeout
    try:
        while fds:
            left = deadline - time.monotonic()
            if left <= 0:
                proc.kill(signal.SIGKILL)
                with contextlib.suppress(Exception):
                    proc.wait(5)
                return -1, f"Health check exceeded timeout ({timeout:g}s)"
            ready, _, _ = select.select(list(fds), [], [], left)
            for fd in ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    del fds[fd]
                elif len(out) < MAX_OUTPUT:
                    out += chunk[: MAX_OUTPUT - len(out)]
        code = proc.wait(max(0.1, deadline - time.monotonic()))
    except Exception as exc:  # noqa: BLE001 - a failed exec is a failed probe
        return -1, str(exc)
    finally:
        proc.close()
    return code, out.decode(errors="replace")


def _running(engine: Engine, cid: str) -> Container | None:
    """The container as it is now, if it still exists and runs (probes stop otherwise)."""
    try:
        c = engine.get(cid)
    except PortsideError:
        return None
    return c if c.running else None


async def _loop(engine: Engine, cid: str, check: dict[str, Any], args: list[str]) -> None:
    interval = _seconds(check.get("Interval"), DEFAULT_INTERVAL)
    timeout = _seconds(check.get("Timeout"), DEFAULT_TIMEOUT)
    retries = int(check.get("Retries") or DEFAULT_RETRIES)
    start_period = _seconds(check.get("StartPeriod"), 0.0)
    start_interval = _seconds(check.get("StartInterval"), DEFAULT_START_INTERVAL)
    while True:
        c = engine.get(cid)
        started = parse_rfc3339(c.state["StartedAt"])
        in_start = time.time() - started < start_period
        health = c.state.get("Health") or {}
        wait = start_interval if in_start and health.get("Status") == "starting" and \
            check.get("StartInterval") else interval
        await asyncio.sleep(wait)
        probed = _running(engine, cid)
        if probed is None:
            return
        begin = now_rfc3339()
        code, output = await asyncio.to_thread(_run_probe, engine, probed, args, timeout)
        current = _running(engine, cid)  # it may have stopped or gone during the probe
        if current is None:
            return
        c = current
        health = c.state.get("Health") or {"Status": "starting", "FailingStreak": 0, "Log": []}
        before = health["Status"]
        log = list(health.get("Log") or [])[-(KEEP_LOG - 1):]
        log.append({"Start": begin, "End": now_rfc3339(), "ExitCode": code, "Output": output})
        health["Log"] = log
        in_start = time.time() - parse_rfc3339(c.state["StartedAt"]) < start_period
        if code == 0:
            health.update(Status="healthy", FailingStreak=0)
        elif not (in_start and before == "starting"):
            health["FailingStreak"] = int(health.get("FailingStreak", 0)) + 1
            if health["FailingStreak"] >= retries:
                health["Status"] = "unhealthy"
        c.state["Health"] = health
        engine.state.save(c)
        if health["Status"] != before:
            engine.event(c, f"health_status: {health['Status']}")
