"""Exec instances: created (recorded) first, started later, attached or detached.

The lifecycle the Docker API handlers (`engine.api.execs`) and `engine.local.LocalEngine`
share: `create` records an instance, `begin` spawns its process, `pump` carries its output
to a `streams.Sink` (and the sink's stdin to it) until the process closes its output, and
`finish` records the exit code before the stream closes, so a caller reading the instance
right after the stream ends sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from dataclasses import dataclass
from typing import Any

from portside.engine import detachkeys
from portside.engine.containers import Engine, NotRunning
from portside.engine.state import Container
from portside.engine.streams import STDERR, STDOUT, Discard, Sink
from portside.errors import Conflict, InvalidArgument, NotFound
from portside.runtime.errors import CommandNotExecutable, CommandNotFound


@dataclass(frozen=True)
class FailedStart:
    """An attached start whose command cannot run: Docker (daemon/exec.go) sends the
    runtime's error on the stream's stdout and records exit code 126, so a client sees the
    message and the exit status, as for any exec."""

    message: bytes


def get(engine: Engine, exec_id: str) -> dict[str, Any]:
    inst = engine.execs.get(exec_id)
    if inst is None:
        raise NotFound(f"No such exec instance: {exec_id}")
    return inst


def runnable(engine: Engine, ref: str) -> Container:
    """The container, if an exec may be created in it (running, not paused)."""
    c = engine.get(ref)
    if not c.running:
        raise NotRunning(c)
    if c.state["Paused"]:
        raise Conflict(f"Container {c.id} is paused, unpause the container before exec")
    return c


def create(engine: Engine, ref: str, body: dict[str, Any]) -> str:
    """Record an exec instance from Docker's exec body (`Cmd`, `Tty`, `AttachStdin`...)."""
    c = runnable(engine, ref)
    cmd = body.get("Cmd") or []
    if isinstance(cmd, str):
        cmd = [cmd]
    if not cmd:
        raise InvalidArgument("No exec command specified")
    if body.get("DetachKeys"):
        detachkeys.parse(str(body["DetachKeys"]))  # refused at create, as Docker does
    exec_id = secrets.token_hex(32)
    engine.execs[exec_id] = {
        "ID": exec_id, "ContainerID": c.id, "Running": False, "ExitCode": None, "Pid": 0,
        "OpenStdin": bool(body.get("AttachStdin")), "OpenStdout": bool(body.get("AttachStdout")),
        "OpenStderr": bool(body.get("AttachStderr")), "CanRemove": False,
        "DetachKeys": body.get("DetachKeys") or "",
        "ProcessConfig": {"tty": bool(body.get("Tty")), "entrypoint": cmd[0],
                          "arguments": cmd[1:], "privileged": bool(body.get("Privileged")),
                          "user": body.get("User") or ""},
        "_env": list(body.get("Env") or []), "_cwd": body.get("WorkingDir") or "",
        "_proc": None,
    }
    engine.event(c, f"exec_create: {' '.join(cmd)}", execID=exec_id)
    return exec_id


def public(inst: dict[str, Any]) -> dict[str, Any]:
    """The instance as Docker's `GET /exec/{id}/json` shows it."""
    return {k: v for k, v in inst.items() if not k.startswith("_")}


def resize(inst: dict[str, Any], rows: int, cols: int) -> None:
    proc = inst.get("_proc")
    if proc is not None and rows and cols:
        with contextlib.suppress(OSError):
            proc.resize(rows, cols)


def _spawn(engine: Engine, inst: dict[str, Any], stdin: bool) -> Any:
    from portside.engine.spec import merge_env

    c = engine.get(inst["ContainerID"])
    if not c.running:
        raise NotRunning(c)
    pc = inst["ProcessConfig"]
    return engine.runtime.exec(
        c.id, [pc["entrypoint"], *pc["arguments"]],
        env=merge_env(c.config.get("Env"), inst["_env"]),
        user=pc["user"] or c.config.get("User") or "",
        cwd=inst["_cwd"] or c.config.get("WorkingDir") or "", tty=pc["tty"], stdin=stdin)


async def begin(engine: Engine, inst: dict[str, Any], body: dict[str, Any]) -> Any:
    """Start the instance's process (Docker's start body: `Detach`, `Tty`, `ConsoleSize`);
    a detached one is finished in the background. Returns the process, or `FailedStart`
    when an attached start's command cannot run (a detached one raises)."""
    if inst["Running"] or inst["ExitCode"] is not None:
        raise Conflict(f"exec {inst['ID']} has already been started")
    tty = bool(body.get("Tty", inst["ProcessConfig"]["tty"]))
    inst["ProcessConfig"]["tty"] = tty
    detach = bool(body.get("Detach"))
    try:
        proc = await asyncio.to_thread(_spawn, engine, inst, inst["OpenStdin"] and not detach)
    except (CommandNotFound, CommandNotExecutable) as exc:
        if detach:
            raise
        reason = ("executable file not found in $PATH" if isinstance(exc, CommandNotFound)
                  else "permission denied")
        inst.update(Running=False, ExitCode=126, Pid=0)
        return FailedStart(f"OCI runtime exec failed: exec failed: exec:"
                           f" \"{inst['ProcessConfig']['entrypoint']}\": {reason}:"
                           " unknown\r\n".encode())
    inst.update(_proc=proc, Running=True)
    c = engine.get(inst["ContainerID"])
    engine.event(c, f"exec_start: {inst['ProcessConfig']['entrypoint']}", execID=inst["ID"])
    if size := body.get("ConsoleSize"):
        with contextlib.suppress(Exception):
            proc.resize(int(size[0]), int(size[1]))
    if detach:
        asyncio.get_running_loop().create_task(finish(engine, inst, proc))
    return proc


async def pump(engine: Engine, inst: dict[str, Any], proc: Any, out: Sink) -> None:
    """Carry the process's output to `out` (and `out.stdin` to it) until its output ends,
    then record its exit; a `FailedStart`'s message goes out alone. When the client types
    the detach keys (a TTY only), this returns at once and the process runs on, its
    output dropped, its exit recorded when it comes."""
    if isinstance(proc, FailedStart):
        await out.write(STDOUT, proc.message)
        return
    sink = _Detachable(out)
    pumps = []
    if proc.pty is not None:
        pumps.append(_copy_out(proc.pty, sink, STDOUT))
        in_fd = proc.pty
    else:
        if proc.stdout is not None:
            pumps.append(_copy_out(proc.stdout.fileno(), sink, STDOUT))
        if proc.stderr is not None:
            pumps.append(_copy_out(proc.stderr.fileno(), sink, STDERR))
        in_fd = proc.stdin.fileno() if proc.stdin is not None else None
    outputs = asyncio.ensure_future(_outputs_then_exit(engine, inst, proc, pumps))
    if inst["OpenStdin"] and in_fd is not None:
        keys = detachkeys.for_stream(proc.pty is not None, True, inst["DetachKeys"])
        feeder = asyncio.ensure_future(_copy_in(out.stdin, in_fd, proc.pty is None, proc,
                                                keys))
        await asyncio.wait((outputs, feeder), return_when=asyncio.FIRST_COMPLETED)
        if not outputs.done() and not feeder.cancelled() and feeder.result() is True:
            sink.detached = True
            return
        feeder.cancel()
    await outputs


class _Detachable:
    """The client's sink until it detaches; then output is dropped."""

    def __init__(self, out: Sink) -> None:
        self.out = out
        self.detached = False

    @property
    def stdin(self) -> asyncio.StreamReader:
        return self.out.stdin

    async def write(self, stream: int, data: bytes) -> bool:
        if self.detached:
            return await Discard().write(stream, data)
        return await self.out.write(stream, data)


async def _outputs_then_exit(engine: Engine, inst: dict[str, Any], proc: Any,
                             pumps: list[Any]) -> None:
    await asyncio.gather(*pumps)
    await finish(engine, inst, proc)


async def _read_fd(fd: int) -> bytes:
    try:
        return await asyncio.to_thread(os.read, fd, 65536)
    except OSError:  # EIO from a PTY master once the process is gone
        return b""


async def _copy_out(fd: int, out: Sink, stream: int) -> None:
    while data := await _read_fd(fd):
        if not await out.write(stream, data):
            return


async def _copy_in(reader: asyncio.StreamReader, fd: int, close_at_eof: bool, proc: Any,
                   detach_keys: bytes | None = None) -> bool:
    """The client's stdin to the process; True when the client typed the detach keys."""
    detector = detachkeys.Detector(detach_keys) if detach_keys else None
    while True:
        data = await reader.read(65536)
        if not data:
            if close_at_eof and proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            return False
        detached = False
        if detector is not None:
            data, detached = detector.feed(data)
        try:
            if data:
                await asyncio.to_thread(os.write, fd, data)
        except OSError:
            return False
        if detached:
            return True


async def finish(engine: Engine, inst: dict[str, Any], proc: Any) -> None:
    code = await asyncio.to_thread(proc.wait)
    inst.update(Running=False, ExitCode=code, Pid=0)
    proc.close()
    inst["_proc"] = None
    with contextlib.suppress(Exception):
        c = engine.get(inst["ContainerID"])
        engine.event(c, "exec_die", execID=inst["ID"], exitCode=str(code))
