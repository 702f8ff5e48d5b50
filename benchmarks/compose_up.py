"""Issue 7's figure: `compose up -d` of a 5-service project to all-running and all-healthy.

The project (the same file for both tools) runs the bootstrap busybox image directly: two
`httpd` services checked with `wget` of their page, three `sleep` services checked with
`test -f` of a file their command writes. Every service has a healthcheck (interval 1s,
start_interval 0.25s in a 30s start period), all on the project's default bridge network.

- portside: `portside compose up -d --wait` against a daemon on a private PORTSIDE_ROOT and
  PORTSIDE_SOCKET (the daemon and everything it made are removed after); `--wait` returns
  when every container is running and healthy.
- podman-compose (Debian's, installed if missing) driving podman with a private
  --root/--runroot, `--storage-driver vfs`, a private network config directory, `--runtime
  runc` and the rlimit containers.conf of DESIGN.md (benchmarks/_podman.py); the image is
  `podman load`ed from `portside save`. podman-compose (1.0.3 in Debian 12) starts the
  containers one `podman run` at a time and pauses a second after each; it has no
  `--wait`, so the time runs from `podman-compose up -d` until `podman ps` shows all five
  running and each passes its healthcheck. There is no systemd here to fire podman's
  health timers, so the poll runs `podman healthcheck run` itself on each container not
  yet healthy (what the timer would do, without waiting for its interval).
- `docker compose`: only with a Docker engine, which this machine does not have.

Each side: best of 3 runs, `compose down -v` (untimed) between runs and at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks import Context, NotAvailable, Result, register
from benchmarks._podman import Podman
from benchmarks._portside import Portside

RUNS = 3
TIMEOUT = 60.0
SERVICES = 5

_HTTPD = """
  {name}:
    image: busybox
    command: sh -c "mkdir -p /www && echo {name} > /www/index.html && exec httpd -f -p {port} -h /www"
    healthcheck:
      test: wget -q -O /dev/null http://127.0.0.1:{port}/
      interval: 1s
      start_period: 30s
      start_interval: 250ms
      retries: 30
"""
_SLEEP = """
  {name}:
    image: busybox
    command: sh -c "touch /tmp/ready && exec sleep 600"
    healthcheck:
      test: test -f /tmp/ready
      interval: 1s
      start_period: 30s
      start_interval: 250ms
      retries: 30
"""
COMPOSE = ("services:" + _HTTPD.format(name="web", port=8080)
           + _HTTPD.format(name="api", port=8081)
           + "".join(_SLEEP.format(name=n) for n in ("store", "worker", "scheduler")))


def _portside(ctx: Context, work: Path, project: Path, archive: Path) -> float:
    """Best `up -d --wait`; leaves the busybox image saved in `archive` for podman."""
    ps = Portside(work)
    compose = ["compose", "-p", "bench", "-f", str(project / "compose.yaml")]
    try:
        ps.start()

        def down() -> None:
            ps(*compose, "down", "-v", "-t", "0")

        times = []
        for _ in range(RUNS):
            t = time.perf_counter()
            ps(*compose, "up", "-d", "--wait", "--wait-timeout", str(TIMEOUT))
            times.append(time.perf_counter() - t)
            rows = [json.loads(line) for line in ps(*compose, "ps", "--format",
                                                    "json").splitlines()]
            healthy = [r for r in rows if "(healthy)" in r["Status"]]
            if len(healthy) != SERVICES:
                raise NotAvailable(f"portside: {len(healthy)} of {SERVICES} healthy after --wait")
            down()
        ctx.log(f"portside compose up -d --wait: {', '.join(f'{t:.2f}' for t in times)} s")
        ps("save", "--format", "docker", "-o", str(archive), "busybox")
        return min(times)
    finally:
        ps.stop()
        subprocess.run(["umount", "-R", str(work)], capture_output=True, check=False)


def _podman_compose(ctx: Context, work: Path, project: Path, archive: Path) -> float:
    ctx.ensure_debs("podman", "podman-compose")
    if not shutil.which("podman-compose"):
        raise NotAvailable("podman-compose is not on PATH")
    pm = Podman(work, archive, storage_driver="vfs", private_networks=True)
    base = ["podman-compose", "--podman-args", " ".join(pm.global_args), "-p", "bench",
            "-f", str(project / "compose.yaml")]

    def compose(*args: str) -> None:
        r = subprocess.run([*base, *args], env=pm.env, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, cwd=project)
        if r.returncode != 0:
            lines = [line for line in (r.stderr + r.stdout).splitlines() if line.strip()]
            raise NotAvailable(f"podman-compose {args[0]} failed: "
                               f"{(lines[-1] if lines else r.returncode)!s:.160}")

    def all_healthy() -> None:
        deadline = time.monotonic() + TIMEOUT
        healthy: set[str] = set()
        while True:
            rows = json.loads(pm("ps", "--format", "json", "--filter",
                                 "label=io.podman.compose.project=bench") or "[]")
            running = [r["Names"][0] for r in rows if r.get("State") == "running"]
            for name in running:
                if name not in healthy and subprocess.run(
                        [*pm.base, "healthcheck", "run", name], env=pm.env,
                        capture_output=True).returncode == 0:
                    healthy.add(name)
            if len(running) == SERVICES and len(healthy) == SERVICES:
                return
            if time.monotonic() > deadline:
                raise NotAvailable(f"podman: {len(running)} running, {len(healthy)} healthy"
                                   f" of {SERVICES} after {TIMEOUT:.0f} s")
            time.sleep(0.05)

    try:
        times, ups = [], []
        for _ in range(RUNS):
            t = time.perf_counter()
            compose("up", "-d")
            ups.append(time.perf_counter() - t)
            all_healthy()
            times.append(time.perf_counter() - t)
            compose("down", "-v", "-t", "0")
        ctx.log(f"podman-compose up -d + all healthy: {', '.join(f'{t:.2f}' for t in times)} s"
                f" (of which `up -d` returning: {', '.join(f'{t:.2f}' for t in ups)} s)")
        return min(times)
    finally:
        subprocess.run([*base, "down", "-v", "-t", "0"], env=pm.env, capture_output=True,
                       stdin=subprocess.DEVNULL, cwd=project, check=False)
        pm.clean()


@register(f"`compose up -d --wait`, {SERVICES} services to all running and healthy",
          goal=1.0, higher_is_better=False, order=70)
def compose_up(ctx: Context) -> Result:
    if os.geteuid() != 0:
        raise NotAvailable("needs root")
    work = Path(tempfile.mkdtemp(prefix="ps-cb-", dir="/var/tmp"))
    try:
        project = work / "project"
        project.mkdir()
        (project / "compose.yaml").write_text(COMPOSE)
        ps_work, pm_work = work / "ps", work / "pm"  # podman wants a runroot under 50 characters
        ps_work.mkdir()
        pm_work.mkdir()
        archive = work / "busybox.tar"
        ours = _portside(ctx, ps_work, project, archive)
        docker = ("n/a (no compose plugin for the docker client here; Debian's docker.io"
                  " ships none)" if not _compose_plugin()
                  else "a plugin is present; not measured by this entry")
        try:
            ref = _podman_compose(ctx, pm_work, project, archive)
        except NotAvailable as exc:
            return Result(ours, None, "s", "podman-compose", f"n/a ({exc}); docker compose:"
                          f" {docker}")
        return Result(ours, ref, "s", f"podman-compose (docker compose: {docker})")
    finally:
        subprocess.run(["umount", "-R", str(work)], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)


def _compose_plugin() -> bool:
    if not shutil.which("docker"):
        return False
    r = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True,
                       timeout=10, check=False)
    return r.returncode == 0
