"""The Runtime: create/start/stop/delete containers with conmon + crun/runc, and adopt
containers started by an earlier process (live-restore).

`root/<id>/` is the OCI bundle and conmon's persist dir: `config.json`, `meta.json`
(what later calls need: runtime, pids and start times, log path), `rootfs/` (overlay
mount point), `diff/` + `work/` (overlay upper/work, unless the spec has its own
`rw_dir`), `pidfile`, `conmon.pid`, `exit` and `oom` (conmon's), `started`, `ctr.log`,
conmon's `ctl`/`winsz` fifos and `attach` socket. Shared: `.state/<runtime>` (the
runtime's state root), `.bin` (fallback hybrid-cgroup wrapper), `.cache` (seccomp BPF),
`.s` (conmon's short links for attach sockets).
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import re
import signal as signals
import threading
import time
from pathlib import Path
from typing import Any

from portside.runtime import cgroups, mounts
from portside.runtime import spec as specgen
from portside.runtime.cgroupwarm import migrations_kept_fast
from portside.runtime.conmon import ConmonConfig, spawn
from portside.runtime.ctrstate import alive, parse_signal, read_int, read_state, wait_pid
from portside.runtime.errors import (
    ContainerExists,
    ContainerUnknown,
    InvalidState,
    RuntimeFailed,
    UnknownRuntime,
)
from portside.runtime.execproc import ExecProcess
from portside.runtime.logkeeper import LogKeeper
from portside.runtime.ociruntime import OCIRuntime
from portside.runtime.procs import process_table, start_time
from portside.runtime.types import ContainerSpec, ContainerState, Resources
from portside.runtime.users import resolve_user

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_SOCK_MAX = 107  # sun_path


class Runtime:
    """Containers under `root`, each in its own cgroup `/<cgroup_parent>/<id>`."""

    def __init__(self, root: Path, cgroup_parent: str = "portside") -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.cgroup_parent = cgroup_parent.strip("/")
        self._runtimes: dict[str, OCIRuntime] = {}
        short = self.root / ".s"
        # conmon links <socket dir>/<id> to the bundle; the attach path must fit sun_path.
        self.socket_dir = short if len(str(short)) + 1 + 64 + 7 <= _SOCK_MAX \
            else Path("/run/portside/attach")
        self.socket_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._keeper: LogKeeper | None = None
        self._lock = threading.Lock()  # the engine calls us from several threads
        # Live-restore: keep rotating the logs of containers an earlier process made.
        for cid in self.list():
            with contextlib.suppress(ContainerUnknown):
                meta = self._meta(cid)
                size = int(meta.get("log_max_size") or 0)
                if size and not (self.root / cid / "exit").exists():
                    self._keep_logs(Path(meta["log_path"]), size,
                                    int(meta.get("log_max_file") or 1), self.root / cid / "ctl")

    def close(self) -> None:
        """Stop the log keeper thread; containers keep running (conmon is theirs)."""
        with self._lock:
            keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.close()

    def _keep_logs(self, log: Path, max_size: int, max_file: int, ctl: Path) -> None:
        with self._lock:
            if self._keeper is None:
                self._keeper = LogKeeper()
        self._keeper.watch(log, max_size, max_file, ctl)

    # -- helpers -----------------------------------------------------------------------

    def _runtime(self, name: str) -> OCIRuntime:
        with self._lock:
            rt = self._runtimes.get(name)
            if rt is None:
                rt = self._runtimes[name] = OCIRuntime(name, self.root / ".state",
                                                       self.root / ".bin")
            return rt

    def _dir(self, cid: str) -> Path:
        if not _ID.match(cid or ""):
            raise ContainerUnknown(cid)
        return self.root / cid

    def _meta(self, cid: str) -> dict[str, Any]:
        d = self._dir(cid)
        try:
            meta = dict(json.loads((d / "meta.json").read_text()))
        except (OSError, ValueError):
            raise ContainerUnknown(cid) from None
        if not meta.get("pid"):
            # A creator that died between conmon's answer and recording it: conmon's own
            # pid files still say who is who (without start times to check them by).
            pid = read_int(d / "pidfile")
            if pid:
                meta.update(pid=pid, conmon_pid=read_int(d / "conmon.pid") or 0)
        return meta

    def _cgpath(self, cid: str) -> str:
        return f"/{self.cgroup_parent}/{cid}"

    # -- lifecycle ---------------------------------------------------------------------

    def create(self, spec: ContainerSpec) -> None:
        """Mount the root, write the bundle, and have conmon run `<runtime> create`."""
        if not _ID.match(spec.id or ""):
            from portside.errors import InvalidArgument

            raise InvalidArgument(f"invalid container id {spec.id!r}")
        d = self.root / spec.id
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            raise ContainerExists(spec.id) from None
        try:
            with migrations_kept_fast(cgroups.detect()):
                self._create(spec, d)
        except BaseException:
            self._cleanup(spec.id, d, spec.runtime)
            raise

    def _create(self, spec: ContainerSpec, d: Path) -> None:
        rt = self._runtime(spec.runtime)
        layout = cgroups.detect()
        upper: Path | None = None
        if spec.lowerdirs:
            rootfs = d / "rootfs"
            rootfs.mkdir()
            rw = Path(spec.rw_dir) if spec.rw_dir else d
            upper, work = rw / "diff", rw / "work"
            upper.mkdir(parents=True, exist_ok=True)
            work.mkdir(exist_ok=True)
            mounts.mount_rootfs(rootfs, [Path(p) for p in spec.lowerdirs], upper, work,
                                d / "l")
        elif spec.rootfs_path is not None:
            rootfs = Path(spec.rootfs_path).resolve()
            if not rootfs.is_dir():
                from portside.errors import InvalidArgument

                raise InvalidArgument(f"rootfs {rootfs} is not a directory")
        else:
            from portside.errors import InvalidArgument

            raise InvalidArgument("container has neither image layers nor a rootfs path")
        user = resolve_user(rootfs, spec.user, spec.group_add)
        init = specgen.init_binary() if spec.init else None
        config = specgen.build(spec, user, layout, self._cgpath(spec.id), str(rootfs), init)
        if rt.name == "crun" and "seccomp" in config["linux"]:
            from portside.runtime.seccomp_bpf import annotation

            # Compiled once per profile here instead of by crun on every create.
            bpf = annotation(config["linux"]["seccomp"], self.root / ".cache")
            if bpf is not None:
                config["annotations"]["run.oci.seccomp_bpf_data"] = bpf
        log_path = Path(spec.log_path) if spec.log_path else d / "ctr.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "id": spec.id, "name": spec.name, "runtime": spec.runtime,
            "rootfs": str(rootfs), "upper": str(upper) if upper else None,
            "log_path": str(log_path), "log_max_file": spec.log_max_file,
            "log_max_size": spec.log_max_size,
            "stop_signal": spec.stop_signal, "tty": spec.tty, "open_stdin": spec.open_stdin,
            "created_at": time.time(),
        }
        (d / "config.json").write_text(json.dumps(config))
        (d / "meta.json").write_text(json.dumps(meta))
        cfg = ConmonConfig(
            cid=spec.id, bundle=d, runtime=rt.create_path,
            runtime_args=rt.create_args + rt.global_args,
            pid_file=d / "pidfile", conmon_pid_file=d / "conmon.pid", persist_dir=d,
            log_path=log_path, socket_dir=self.socket_dir,
            tty=spec.tty, stdin=spec.open_stdin, stdin_once=spec.stdin_once, name=spec.name,
        )
        pid = spawn(cfg)
        if spec.log_max_size:
            self._keep_logs(log_path, spec.log_max_size, spec.log_max_file, d / "ctl")
        meta["pid"] = pid
        meta["pid_start"] = start_time(pid)
        conmon_pid = read_int(d / "conmon.pid") or 0
        meta["conmon_pid"] = conmon_pid
        meta["conmon_start"] = start_time(conmon_pid)
        tmp = d / "meta.json.tmp"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, d / "meta.json")

    def start(self, cid: str) -> None:
        """Run the created container's process (`<runtime> start`)."""
        meta = self._meta(cid)
        st = self.state(cid)
        if st.status != "created":
            raise InvalidState(cid, "start", st.status)
        d = self._dir(cid)
        (d / "started").write_text(repr(time.time()))
        rt = self._runtime(meta["runtime"])
        try:
            if not rt.release(cid, int(meta.get("pid") or 0)):
                rt.run(cid, "start", "start", cid)
        except RuntimeFailed:
            (d / "started").unlink(missing_ok=True)
            raise

    def kill(self, cid: str, signal: str | int = "SIGKILL") -> None:
        """Send a signal to the container's init process (PID 1 inside)."""
        sig = parse_signal(signal)
        meta = self._meta(cid)
        st = self.state(cid)
        if st.status == "stopped":
            raise InvalidState(cid, "kill", "not running")
        pid = int(meta.get("pid", 0))
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return
        try:
            if alive(pid, meta.get("pid_start")):
                signals.pidfd_send_signal(fd, sig)
        except ProcessLookupError:
            pass
        finally:
            os.close(fd)
        if st.status == "paused" and sig == signals.SIGKILL:
            # A frozen task dies only once thawed (cgroup v1 freezer).
            with contextlib.suppress(RuntimeFailed):
                self._runtime(meta["runtime"]).run(cid, "resume", "resume", cid)

    def stop(self, cid: str, timeout: float = 10, signal: str | int | None = None) -> int | None:
        """Send the stop signal, wait up to `timeout` seconds, then SIGKILL; exit code."""
        meta = self._meta(cid)
        st = self.state(cid)
        if st.status == "stopped":
            return st.exit_code
        if st.status == "created":
            # Never started: nothing to signal gracefully.
            self.kill(cid, "SIGKILL")
            return self.wait(cid, 30)
        sig = signal if signal is not None else meta.get("stop_signal") or "SIGTERM"
        if st.status == "paused":
            sig = "SIGKILL"
        with contextlib.suppress(InvalidState):
            self.kill(cid, sig)
        if timeout > 0:
            with contextlib.suppress(TimeoutError):
                return self.wait(cid, timeout)
        with contextlib.suppress(InvalidState):
            self.kill(cid, "SIGKILL")
        return self.wait(cid, 30)

    def state(self, cid: str) -> ContainerState:
        """created / running / paused / stopped, with pid, exit code, OOM and times."""
        d = self._dir(cid)
        return read_state(d, self._meta(cid), self._cgpath(cid))

    def _wait_conmon(self, meta: dict[str, Any], timeout: float | None) -> bool:
        """Wait for conmon to exit (it has then written the exit file); False on timeout."""
        return wait_pid(int(meta.get("conmon_pid") or 0), meta.get("conmon_start"), timeout)

    def wait(self, cid: str, timeout: float | None = None) -> int:
        """Block until the container exits; its exit code (TimeoutError on timeout).

        Works for containers created by another process: conmon's exit file is the truth.
        """
        d = self._dir(cid)
        meta = self._meta(cid)
        code = read_int(d / "exit")
        if code is not None:
            return code
        if not self._wait_conmon(meta, timeout):
            raise TimeoutError(f"container {cid[:12]} still running after {timeout}s")
        code = read_int(d / "exit")
        if code is None:
            # conmon died without writing one (killed); the container is gone with it.
            pid = int(meta.get("pid") or 0)
            if alive(pid, meta.get("pid_start")):
                raise RuntimeFailed(cid, "wait", "conmon is gone but the container runs")
            return -1
        return code

    def exit_fd(self, cid: str) -> int | None:
        """A pidfd that becomes readable when the container has exited and its exit code
        is on disk (conmon's exit), for event loops (`loop.add_reader`) instead of a
        thread per `wait`. None when that has already happened. The caller closes it."""
        meta = self._meta(cid)
        if (self._dir(cid) / "exit").exists():
            return None
        cpid = int(meta.get("conmon_pid") or 0)
        if not alive(cpid, meta.get("conmon_start")):
            return None
        try:
            return os.pidfd_open(cpid)
        except ProcessLookupError:
            return None

    def update(self, cid: str, resources: Resources) -> None:
        """Change a running container's cgroup limits (`docker update`)."""
        meta = self._meta(cid)
        spec = ContainerSpec(id=cid, resources=resources)
        res = specgen.resources(spec)
        res.pop("devices", None)
        if resources.pids_limit is not None and resources.pids_limit < 0:
            # Lifting the limit: crun (1.8) writes "-1" into pids.max, which the kernel
            # refuses; "max" is what both cgroup versions take.
            pids_dir = cgroups.detect().controller_dir("pids", self._cgpath(cid))
            if pids_dir is not None and (pids_dir / "pids.max").exists():
                (pids_dir / "pids.max").write_text("max")
        d = self._dir(cid)
        path = d / "resources.json"
        path.write_text(json.dumps(res))
        try:
            self._runtime(meta["runtime"]).run(cid, "update", "update", "--resources",
                                               str(path), cid)
        finally:
            path.unlink(missing_ok=True)

    def pause(self, cid: str) -> None:
        st = self.state(cid)
        if st.status != "running":
            raise InvalidState(cid, "pause", st.status)
        self._runtime(self._meta(cid)["runtime"]).run(cid, "pause", "pause", cid)

    def resume(self, cid: str) -> None:
        st = self.state(cid)
        if st.status != "paused":
            raise InvalidState(cid, "unpause", st.status)
        self._runtime(self._meta(cid)["runtime"]).run(cid, "unpause", "resume", cid)

    def delete(self, cid: str, force: bool = False) -> None:
        """Remove the container: runtime state, mounts, cgroup, conmon, files. With
        `force` a running container is killed first."""
        d = self._dir(cid)
        if not d.is_dir():
            raise ContainerUnknown(cid)
        try:
            meta = self._meta(cid)
        except ContainerUnknown:
            meta = {}
        if meta.get("pid"):
            st = self.state(cid)
            if st.status in ("running", "paused") and not force:
                raise InvalidState(cid, "remove", st.status + " (stop it or force removal)")
            if st.status != "stopped":
                self.kill(cid, "SIGKILL")
                self._wait_conmon(meta, 30)
        self._cleanup(cid, d, meta.get("runtime", "crun"))

    def _cleanup(self, cid: str, d: Path, runtime: str) -> None:
        """Undo whatever part of create happened; every step tolerates absence."""
        meta: dict[str, Any] = {}
        with contextlib.suppress(ContainerUnknown):
            meta = self._meta(cid)
        if meta.get("pid"):
            self._wait_conmon(meta, 30)
            # Without conmon (killed) nobody waited for the process: it must be gone
            # before its cgroup can be removed.
            wait_pid(int(meta["pid"]), meta.get("pid_start"), 30)
        if self._keeper is not None and meta.get("log_path"):
            self._keeper.unwatch(Path(meta["log_path"]))
        rt = None
        with contextlib.suppress(RuntimeFailed, UnknownRuntime):
            rt = self._runtime(runtime)
        if rt is not None and (rt.state_root / cid).exists() and (
                not meta.get("pid") or alive(int(meta["pid"]), meta.get("pid_start"))):
            # Only a live (or unknown) process needs the runtime; for a dead one its
            # delete would just remove the state dir and cgroup, which we do below anyway.
            rt.run(cid, "delete", "delete", "--force", cid, check=False)
        left = mounts.unmount_all(d)
        busy = cgroups.remove_patiently(cgroups.detect(), self._cgpath(cid))
        (self.socket_dir / cid).unlink(missing_ok=True)
        if rt is not None and (rt.state_root / cid).exists():
            mounts.clear_dir(rt.state_root / cid)
        if left or busy:
            # Keep the container dir so that a later delete can finish the job.
            what = ", ".join([*left, *map(str, busy)])
            raise RuntimeFailed(cid, "delete", f"still busy: {what}")
        # A log_path outside the container dir belongs to the caller (it may outlive
        # this runtime container, as Docker keeps logs across restarts until `rm`).
        mounts.clear_dir(d)

    # -- exec, attach ------------------------------------------------------------------

    def exec(
        self,
        cid: str,
        args: list[str],
        env: list[str] | None = None,
        user: str = "",
        cwd: str = "",
        tty: bool = False,
        stdin: bool = False,
    ) -> ExecProcess:
        """Start `args` in the running container (same caps, seccomp, no_new_privs)."""
        from portside.runtime.execs import start_exec

        meta = self._meta(cid)
        st = self.state(cid)
        if st.status != "running":
            raise InvalidState(cid, "exec in", st.status)
        return start_exec(self._runtime(meta["runtime"]), self._dir(cid), meta, args,
                          env or [], user, cwd, tty, stdin)

    def attach_socket(self, cid: str) -> Path:
        """conmon's attach socket (SOCK_SEQPACKET; first byte of each packet = stream)."""
        self._meta(cid)
        return self.socket_dir / cid / "attach"

    def resize(self, cid: str, rows: int, cols: int) -> None:
        """Resize the container's PTY: a "1 <rows> <cols>" line on conmon's ctl fifo."""
        meta = self._meta(cid)
        ctl = self._dir(cid) / "ctl"
        if not meta.get("tty") or not ctl.exists():
            raise InvalidState(cid, "resize", "without a terminal")
        try:
            fd = os.open(ctl, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: conmon is gone
            raise InvalidState(cid, "resize", "not running") from None
        try:
            os.write(fd, f"1 {int(rows)} {int(cols)}\n".encode())
        finally:
            os.close(fd)

    # -- inspection --------------------------------------------------------------------

    def list(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir()
                      if _ID.match(p.name) and (p / "meta.json").exists())

    def stats(self, cid: str) -> dict[str, int]:
        self._meta(cid)
        return cgroups.stats(cgroups.detect(), self._cgpath(cid))

    def processes(self, cid: str) -> builtins.list[dict[str, Any]]:
        self._meta(cid)
        return process_table(cgroups.pids(cgroups.detect(), self._cgpath(cid)))

    def upperdir(self, cid: str) -> Path:
        meta = self._meta(cid)
        if not meta.get("upper"):
            raise InvalidState(cid, "diff", "using a plain directory root")
        return Path(meta["upper"])

    def rootfs(self, cid: str) -> Path:
        return Path(self._meta(cid)["rootfs"])

    def log_path(self, cid: str) -> Path:
        return Path(self._meta(cid)["log_path"])
