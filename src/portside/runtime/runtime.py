"""The Runtime: create/start/stop/delete containers with conmon + crun/runc, and adopt
containers started by an earlier process (live-restore).

Layout of `root/<id>/`: `bundle/config.json`, `bundle/rootfs` (overlay mount point),
`diff/` + `work/` (overlay upper/work), `conmon.pid`, `ctr.pid`, `exit` (exit code,
written by conmon), `oom`, `started`, `ctr.log`, `attach` socket, `ctl`/`winsz` fifos.
"""

from __future__ import annotations

from pathlib import Path

from portside.runtime.execproc import ExecProcess
from portside.runtime.types import ContainerSpec, ContainerState


class Runtime:
    def __init__(self, root: Path, cgroup_parent: str = "portside") -> None:
        self.root = Path(root)
        self.cgroup_parent = cgroup_parent

    def create(self, spec: ContainerSpec) -> None:
        raise NotImplementedError

    def start(self, cid: str) -> None:
        raise NotImplementedError

    def kill(self, cid: str, signal: str | int = "SIGKILL") -> None:
        raise NotImplementedError

    def stop(self, cid: str, timeout: float = 10, signal: str | int | None = None) -> int | None:
        raise NotImplementedError

    def state(self, cid: str) -> ContainerState:
        raise NotImplementedError

    def wait(self, cid: str, timeout: float | None = None) -> int:
        raise NotImplementedError

    def pause(self, cid: str) -> None:
        raise NotImplementedError

    def resume(self, cid: str) -> None:
        raise NotImplementedError

    def delete(self, cid: str, force: bool = False) -> None:
        raise NotImplementedError

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
        raise NotImplementedError

    def attach_socket(self, cid: str) -> Path:
        raise NotImplementedError

    def resize(self, cid: str, rows: int, cols: int) -> None:
        raise NotImplementedError

    def list(self) -> list[str]:
        raise NotImplementedError

    def stats(self, cid: str) -> dict[str, int]:
        raise NotImplementedError

    def processes(self, cid: str) -> list[dict[str, object]]:
        raise NotImplementedError

    def upperdir(self, cid: str) -> Path:
        raise NotImplementedError

    def log_path(self, cid: str) -> Path:
        raise NotImplementedError
