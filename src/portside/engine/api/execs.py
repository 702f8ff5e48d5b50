"""Handlers of exec instances: `POST /containers/{id}/exec`, `/exec/{id}/start|resize|json`.

An exec instance is created (recorded) first and started later, attached through an
upgraded connection or detached. Its exit code is recorded before the stream closes, so
a client reading `/exec/{id}/json` right after the stream ends sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from typing import Any

from aiohttp import web

from portside.engine.api import streams
from portside.engine.api.containers import body_json, engine_of
from portside.engine.containers import Engine, NotRunning
from portside.errors import Conflict, InvalidArgument, NotFound
from portside.runtime.errors import CommandNotExecutable, CommandNotFound


def _get(engine: Engine, exec_id: str) -> dict[str, Any]:
    inst = engine.execs.get(exec_id)
    if inst is None:
        raise NotFound(f"No such exec instance: {exec_id}")
    return inst


async def create(request: web.Request) -> web.Response:
    engine = engine_of(request)
    c = engine.get(request.match_info["id"])
    if not c.running:
        raise NotRunning(c)
    if c.state["Paused"]:
        raise Conflict(f"Container {c.id} is paused, unpause the container before exec")
    body = await body_json(request)
    cmd = body.get("Cmd") or []
    if isinstance(cmd, str):
        cmd = [cmd]
    if not cmd:
        raise InvalidArgument("No exec command specified")
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
    return web.json_response({"Id": exec_id}, status=201)


def _public(inst: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in inst.items() if not k.startswith("_")}


async def inspect(request: web.Request) -> web.Response:
    inst = _get(engine_of(request), request.match_info["id"])
    return web.json_response(_public(inst))


async def resize(request: web.Request) -> web.Response:
    inst = _get(engine_of(request), request.match_info["id"])
    h, w = int(request.query.get("h") or 0), int(request.query.get("w") or 0)
    proc = inst.get("_proc")
    if proc is not None and h and w:
        with contextlib.suppress(OSError):
            proc.resize(h, w)
    return web.Response(status=201)


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


async def _read_fd(fd: int) -> bytes:
    try:
        return await asyncio.to_thread(os.read, fd, 65536)
    except OSError:  # EIO from a PTY master once the process is gone
        return b""


async def start(request: web.Request) -> web.StreamResponse:
    engine = engine_of(request)
    inst = _get(engine, request.match_info["id"])
    body = await body_json(request)
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
        return await _failed_start(request, inst, tty, exc)
    inst.update(_proc=proc, Running=True)
    c = engine.get(inst["ContainerID"])
    engine.event(c, f"exec_start: {inst['ProcessConfig']['entrypoint']}", execID=inst["ID"])
    if size := body.get("ConsoleSize"):
        with contextlib.suppress(Exception):
            proc.resize(int(size[0]), int(size[1]))
    if detach:
        asyncio.get_running_loop().create_task(_finish(engine, inst, proc))
        return web.Response(status=200)
    out = streams.Hijacked(request, tty)
    await out.open()
    pumps = []
    if proc.pty is not None:
        pumps.append(_copy_out(proc.pty, out, streams.STDOUT))
        in_fd = proc.pty
    else:
        if proc.stdout is not None:
            pumps.append(_copy_out(proc.stdout.fileno(), out, streams.STDOUT))
        if proc.stderr is not None:
            pumps.append(_copy_out(proc.stderr.fileno(), out, streams.STDERR))
        in_fd = proc.stdin.fileno() if proc.stdin is not None else None
    feeder = None
    if inst["OpenStdin"] and in_fd is not None:
        feeder = asyncio.ensure_future(_copy_in(out.stdin, in_fd, proc.pty is None, proc))
    await asyncio.gather(*pumps)
    if feeder is not None:
        feeder.cancel()
    await _finish(engine, inst, proc)
    await out.close()
    return out.resp or web.Response(status=200)


async def _failed_start(request: web.Request, inst: dict[str, Any], tty: bool,
                        exc: Exception) -> web.StreamResponse:
    """Docker (daemon/exec.go) answers an attached start whose command cannot run with the
    upgraded stream carrying the runtime's error on stdout, and records exit code 126: a
    client sees the message and the exit status, as for any exec."""
    reason = ("executable file not found in $PATH" if isinstance(exc, CommandNotFound)
              else "permission denied")
    message = (f"OCI runtime exec failed: exec failed: exec:"
               f" \"{inst['ProcessConfig']['entrypoint']}\": {reason}: unknown\r\n")
    inst.update(Running=False, ExitCode=126, Pid=0)
    out = streams.Hijacked(request, tty)
    await out.open()
    await out.write(streams.STDOUT, message.encode())
    await out.close()
    return out.resp or web.Response(status=200)


async def _copy_out(fd: int, out: streams.Hijacked, stream: int) -> None:
    while data := await _read_fd(fd):
        if not await out.write(stream, data):
            return


async def _copy_in(reader: asyncio.StreamReader, fd: int, close_at_eof: bool, proc: Any) -> None:
    while True:
        data = await reader.read(65536)
        if not data:
            if close_at_eof and proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            return
        try:
            await asyncio.to_thread(os.write, fd, data)
        except OSError:
            return


async def _finish(engine: Engine, inst: dict[str, Any], proc: Any) -> None:
    code = await asyncio.to_thread(proc.wait)
    inst.update(Running=False, ExitCode=code, Pid=0)
    proc.close()
    inst["_proc"] = None
    with contextlib.suppress(Exception):
        c = engine.get(inst["ContainerID"])
        engine.event(c, "exec_die", execID=inst["ID"], exitCode=str(code))


def routes() -> list[tuple[str, str, Any]]:
    return [
        ("POST", "/containers/{id}/exec", create),
        ("POST", "/exec/{id}/start", start),
        ("POST", "/exec/{id}/resize", resize),
        ("GET", "/exec/{id}/json", inspect),
    ]
