"""Drive conmon: one per container, it runs `<runtime> create`, then holds the
container's stdio (log file, attach socket, PTY), writes the exit code and OOM status,
and outlives us (it double-forks into its own session).

We learn the outcome of `<runtime> create` from conmon's sync pipe (`_OCI_SYNCPIPE`,
API version 1): one JSON object `{"data": <pid>}` on success, or `{"data": -1,
"message": "<runtime's error>"}`.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from portside.runtime.errors import (
    CommandNotExecutable,
    CommandNotFound,
    RuntimeFailed,
)


def conmon_binary() -> str:
    path = shutil.which("conmon") or "/usr/bin/conmon"
    if not os.path.exists(path):
        raise RuntimeFailed("-", "create", "conmon is not installed (apt-get install conmon)")
    return path


@dataclass
class ConmonConfig:
    cid: str
    bundle: Path  # holds config.json; conmon puts ctl/winsz fifos and the attach socket here
    runtime: str  # absolute path of crun/runc (or of the wrapper that fixes the cgroup view)
    runtime_args: list[str]
    pid_file: Path
    conmon_pid_file: Path
    persist_dir: Path  # conmon writes `exit` and `oom` here
    log_path: Path
    socket_dir: Path
    log_max_size: int | None = None
    tty: bool = False
    stdin: bool = False
    stdin_once: bool = False
    name: str = ""

    def argv(self) -> list[str]:
        a = [
            conmon_binary(), "--api-version", "1",
            "-c", self.cid, "-u", self.cid, "-n", self.name or self.cid,
            "-r", self.runtime,
            "-b", str(self.bundle),
            "-p", str(self.pid_file), "-P", str(self.conmon_pid_file),
            "--persist-dir", str(self.persist_dir),
            "--exit-dir", str(self.persist_dir),
            "-l", f"k8s-file:{self.log_path}",
            "--socket-dir-path", str(self.socket_dir),
            # conmon would otherwise sync() every filesystem when a container exits.
            "--no-sync-log",
            "--log-level", "error",
        ]
        for arg in self.runtime_args:
            a += ["--runtime-arg", arg]
        if self.log_max_size:
            a += ["--log-size-max", str(self.log_max_size)]
        if self.tty:
            a.append("-t")
        if self.stdin:
            a += ["-i"] if self.stdin_once else ["-i", "--leave-stdin-open"]
        return a


def classify(cid: str, action: str, message: str) -> RuntimeFailed:
    """Turn the runtime's error text into the error Docker would report."""
    low = message.lower()
    if "executable file" in low and "not found" in low or "no such file or directory" in low \
            and ("exec" in low or "executable" in low):
        return CommandNotFound(cid, action, message)
    if "permission denied" in low and ("exec" in low or "executable" in low):
        return CommandNotExecutable(cid, action, message)
    return RuntimeFailed(cid, action, message)


def _clean(msg: str) -> str:
    """Drop runc's logrus framing (`time=... level=error msg="..."`)."""
    out = []
    for line in msg.splitlines():
        line = line.strip()
        if 'msg="' in line:
            line = line.split('msg="', 1)[1].rsplit('"', 1)[0].replace('\\"', '"')
        if line:
            out.append(line)
    return "; ".join(out)


def spawn(cfg: ConmonConfig, timeout: float = 60.0) -> int:
    """Start conmon, wait for `<runtime> create` to finish; returns the container pid.

    Raises a RuntimeFailed subclass carrying the runtime's message when create fails.
    """
    r, w = os.pipe()
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        "_OCI_SYNCPIPE": str(w),
        # Bind every symbol while conmon starts, before it forks its long-lived half:
        # bound lazily, libc's first call through its own PLT (realloc, on some cgroup
        # path lengths) makes that half walk every library's symbol tables, which then
        # stay mapped in it: 0.4 MiB more resident memory per container (2.3 MiB
        # against 1.9 MiB).
        "LD_BIND_NOW": "1",
    }
    try:
        proc = subprocess.Popen(
            cfg.argv(), pass_fds=[w], env=env, cwd=str(cfg.bundle),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except BaseException:
        os.close(r)
        os.close(w)
        raise
    os.close(w)
    try:
        # conmon's first process exits once it has forked (its child keeps no stderr).
        # A plain blocking wait: Popen.wait(timeout) polls with sleeps.
        proc.wait()
        buf = _read_line(r, timeout, cfg.cid)
        if not buf:
            assert proc.stderr is not None
            err = proc.stderr.read().decode(errors="replace").strip()
            raise RuntimeFailed(cfg.cid, "create",
                                _clean(err) or f"conmon exited with {proc.returncode}")
    finally:
        os.close(r)
        if proc.stderr is not None:
            proc.stderr.close()
    try:
        msg = json.loads(buf.split(b"\n", 1)[0])
    except ValueError:
        raise RuntimeFailed(cfg.cid, "create", f"bad answer from conmon: {buf[:200]!r}") from None
    pid = int(msg.get("data", -1))
    if pid <= 0:
        raise classify(cfg.cid, "create", _clean(str(msg.get("message", "runtime failed"))))
    return pid


def _read_line(fd: int, timeout: float, cid: str) -> bytes:
    """The first line conmon writes on the sync pipe (b"" if it closed it unsaid)."""
    buf = b""
    while b"\n" not in buf:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            raise RuntimeFailed(cid, "create", f"no answer from conmon in {timeout}s")
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buf += chunk
    return buf


def connect_attach(path: Path) -> socket.socket:
    """Connect to conmon's attach socket, also when its path exceeds sun_path (108 bytes)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.setblocking(False)
    if len(str(path)) < 100:
        sock.setblocking(True)
        sock.connect(str(path))
        sock.setblocking(False)
        return sock
    dirfd = os.open(path.parent, os.O_PATH)
    try:
        sock.setblocking(True)
        sock.connect(f"/proc/self/fd/{dirfd}/{path.name}")
        sock.setblocking(False)
    finally:
        os.close(dirfd)
    return sock
