"""`exec` into a running container: a process.json derived from the container's own
process (capabilities, rlimits, no_new_privs, apparmor; the runtime applies the
container's seccomp itself), run by `<runtime> exec`, with pipes or a PTY."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from portside.errors import InvalidArgument
from portside.runtime.conmon import _clean, classify
from portside.runtime.errors import CommandNotFound
from portside.runtime.execproc import ConsoleSocket, ExecProcess
from portside.runtime.ociruntime import OCIRuntime
from portside.runtime.rootpath import resolve_in_root
from portside.runtime.users import resolve_user


def exec_process(config: dict[str, Any], rootfs: Path, args: list[str], env: list[str],
                 user: str, cwd: str, tty: bool) -> dict[str, Any]:
    """The process.json for an exec: the container's process with these overrides."""
    if not args:
        raise InvalidArgument("no command given to exec")
    base = dict(config.get("process") or {})
    proc: dict[str, Any] = {k: v for k, v in base.items()
                            if k in ("capabilities", "rlimits", "noNewPrivileges",
                                     "apparmorProfile", "selinuxLabel", "user")}
    if user:
        u = resolve_user(rootfs, user)
        proc["user"] = {"uid": u.uid, "gid": u.gid}
        if u.additional_gids:
            proc["user"]["additionalGids"] = u.additional_gids
    merged = list(base.get("env") or [])
    keys = {e.partition("=")[0]: i for i, e in enumerate(merged)}
    for e in env:
        k = e.partition("=")[0]
        if k in keys:
            merged[keys[k]] = e
        else:
            keys[k] = len(merged)
            merged.append(e)
    if tty and "TERM" not in keys:
        merged.append("TERM=xterm")
    proc.update(args=list(args), env=merged, cwd=cwd or base.get("cwd") or "/", terminal=tty)
    return proc


def find_executable(rootfs: Path, cmd: str, env: list[str], cwd: str) -> bool | None:
    """Whether `cmd` resolves to an executable file in the container root, as execvp
    would look it up; None when a mount may hide the answer (we then let the runtime
    decide)."""
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for e in env:
        if e.startswith("PATH="):
            path = e[5:]
    if "/" in cmd:
        candidates = [cmd if cmd.startswith("/") else f"{cwd.rstrip('/')}/{cmd}"]
    else:
        candidates = [f"{d.rstrip('/') or ''}/{cmd}" for d in path.split(":") if d]
    for c in candidates:
        host = resolve_in_root(rootfs, c)
        if host.is_file() and os.access(host, os.X_OK):
            return True
    return False


def start_exec(rt: OCIRuntime, d: Path, meta: dict[str, Any], args: list[str],
               env: list[str], user: str, cwd: str, tty: bool, stdin: bool) -> ExecProcess:
    cid = meta["id"]
    config = json.loads((d / "config.json").read_text())
    proc = exec_process(config, Path(meta["rootfs"]), args, env, user, cwd, tty)
    user_mounts = [m["destination"] for m in config.get("mounts", [])
                   if m.get("type") in ("bind", "tmpfs") and m["destination"] not in
                   ("/dev", "/dev/shm")]
    cmd = args[0]
    if not any(cmd.startswith(m.rstrip("/") + "/") for m in user_mounts) and not \
            find_executable(Path(meta["rootfs"]), cmd, proc["env"], proc["cwd"]):
        raise CommandNotFound(cid, "exec", f"{cmd}: executable file not found in $PATH")
    fd, name = tempfile.mkstemp(prefix="exec-", suffix=".json", dir=d)
    with os.fdopen(fd, "w") as f:
        json.dump(proc, f)
    spec_path = Path(name)
    pid_file = spec_path.with_suffix(".pid")
    argv = rt.argv("exec", "--process", str(spec_path), "--pid-file", str(pid_file))
    try:
        if tty and rt.name == "runc":
            return _exec_runc_tty(argv + ["--tty", cid], spec_path, pid_file)
        return _exec(argv, cid, tty, stdin, spec_path, pid_file)
    except BaseException:
        spec_path.unlink(missing_ok=True)
        pid_file.unlink(missing_ok=True)
        raise


def _exec(argv: list[str], cid: str, tty: bool, stdin: bool, spec_path: Path,
          pid_file: Path) -> ExecProcess:
    """Pipes, or a PTY whose master the runtime sends over a console socket (crun)."""
    console: ConsoleSocket | None = None
    if tty:
        console = ConsoleSocket()
        argv = argv + ["--tty", "--console-socket", str(console.path)]
    argv = argv + [cid]
    try:
        p = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin and not tty else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL if tty else subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        master = None
        if console is not None:
            master = console.receive(p)
            if master is None:
                # The runtime failed before handing over the PTY: report its error.
                err = p.stderr.read() if p.stderr else b""
                p.wait()
                raise classify(cid, "exec", _clean(err.decode(errors="replace"))
                               or f"exit status {p.returncode}")
    finally:
        if console is not None:
            console.close()
    return ExecProcess(p, pty=master, pid_file=pid_file, cleanup=[spec_path, pid_file])


def _exec_runc_tty(argv: list[str], spec_path: Path, pid_file: Path) -> ExecProcess:
    """runc hands a console socket over only when detaching (then nobody can wait for the
    exit code); attached, it proxies the container's PTY to its own stdio. So runc gets
    the slave end of a PTY of ours and we keep the master; runc resizes the container's
    terminal from its stdin's size on SIGWINCH."""
    master, slave = os.openpty()
    try:
        p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=subprocess.PIPE,
                             start_new_session=True)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    return ExecProcess(p, pty=master, pid_file=pid_file, cleanup=[spec_path, pid_file],
                       winch=True)
