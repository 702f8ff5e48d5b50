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
from portside.runtime.execproc import ConsoleSocket, ExecProcess
from portside.runtime.ociruntime import OCIRuntime
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


def start_exec(rt: OCIRuntime, d: Path, meta: dict[str, Any], args: list[str],
               env: list[str], user: str, cwd: str, tty: bool, stdin: bool) -> ExecProcess:
    cid = meta["id"]
    config = json.loads((d / "config.json").read_text())
    proc = exec_process(config, Path(meta["rootfs"]), args, env, user, cwd, tty)
    fd, name = tempfile.mkstemp(prefix="exec-", suffix=".json", dir=d)
    with os.fdopen(fd, "w") as f:
        json.dump(proc, f)
    spec_path = Path(name)
    pid_file = spec_path.with_suffix(".pid")
    argv = rt.argv("exec", "--process", str(spec_path), "--pid-file", str(pid_file))
    console: ConsoleSocket | None = None
    if tty:
        console = ConsoleSocket()
        argv += ["--console-socket", str(console.path)]
    argv.append(cid)
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
    except BaseException:
        spec_path.unlink(missing_ok=True)
        pid_file.unlink(missing_ok=True)
        raise
    finally:
        if console is not None:
            console.close()
    return ExecProcess(p, pty=master, pid_file=pid_file, cleanup=[spec_path, pid_file])
