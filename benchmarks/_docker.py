"""Debian's Docker engine (docker.io 20.10, with containerd) as the benchmarks' reference.

`Docker(ctx, archive)` installs docker.io when missing, then starts a private dockerd:
its own socket, --data-root, --exec-root and pidfile in a scratch directory, the
containerd dockerd starts and manages itself when given none (its socket under the
exec-root), overlay2, the rlimit this host's hard limit allows (DESIGN.md), a private
--config-file (to keep its identity key out of /etc/docker, and to list the registries it
may reach over plain http when a benchmark runs one), and a bridge of its own (psbdock0, made before and deleted after) so the
host's docker0, if any, is never touched. Docker's default --iptables=true stays on, so its
network setup costs what it costs for users; the DOCKER* chains it adds to iptables' filter
and nat tables (and a FORWARD policy it may set) are taken out again by `stop()`, which
restores the tables as they were before dockerd started and checks that they are.

It is driven with the `docker` client first on PATH (a 28.x client in /usr/local/bin here;
Debian's 20.10 client is /usr/bin/docker) through DOCKER_HOST, with a private client
config directory. The image comes from `docker load` of a `portside save --format docker`
archive (there is no registry to pull from).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from benchmarks import Context, NotAvailable

BRIDGE = "psbdock0"
BRIDGE_ADDRESS = "10.210.251.1/24"
BRIDGE_SUBNET = "10.210.251.0/24"
SYSTEM_CONTAINERD = Path("/run/containerd/containerd.sock")
KEY = Path("/etc/docker/key.json")  # dockerd's default identity key path
# sysctls dockerd may set (ip forwarding, bridge netfilter); put back if it changed them
SYSCTLS = ("net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding",
           "net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables")
TABLES = ("filter", "nat")


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)


def _tables(save: str) -> dict[str, list[str]]:
    """`iptables-save` output as {table: lines}, without comments and packet counters."""
    tables: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in save.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            current = tables.setdefault(line[1:], [])
        elif current is not None and line != "COMMIT":
            current.append(re.sub(r" \[\d+:\d+\]$", " [0:0]", line))
    return tables


def _is_docker_line(line: str) -> bool:
    return ("DOCKER" in line or BRIDGE in line or BRIDGE_SUBNET in line)


def _policies(lines: list[str]) -> dict[str, str]:
    return {parts[0][1:]: parts[1] for parts in (line.split() for line in lines)
            if parts[0].startswith(":") and parts[1] != "-"}


def _restore_text(tables: dict[str, list[str]]) -> str:
    return "".join(f"*{name}\n" + "".join(f"{line}\n" for line in lines) + "COMMIT\n"
                   for name, lines in tables.items())


class _Firewall:
    """iptables (and ip6tables) filter and nat tables: a snapshot before dockerd, and the
    way back to it after."""

    def __init__(self, family: str) -> None:
        self.family = family  # "iptables" or "ip6tables"
        self.save = shutil.which(f"{family}-save")
        self.snapshot = self._read() if self.save else {}

    def _read(self) -> dict[str, list[str]]:
        r = _run(f"{self.family}-save")
        if r.returncode != 0:
            raise NotAvailable(f"{self.family}-save failed: {r.stderr.strip()[-120:]}")
        return {t: lines for t, lines in _tables(r.stdout).items() if t in TABLES}

    def restore(self) -> list[str]:
        """Put the filter and nat tables back; return what is still wrong (empty: all is
        as before). When nothing but Docker's rules changed since the snapshot, the
        snapshot itself is restored (exactly as it was); when something else also changed
        the tables meanwhile (another engineer's tests, netavark), only Docker's lines are
        taken out, so their rules stay."""
        if not self.save:
            return []
        now = self._read()
        if now == self.snapshot:
            return []
        cleaned: dict[str, list[str]] = {}
        for table, lines in now.items():
            before = _policies(self.snapshot.get(table, []))
            kept = []
            for line in lines:
                if _is_docker_line(line):
                    continue
                parts = line.split()
                if parts[0].startswith(":") and parts[0][1:] in before:
                    line = f"{parts[0]} {before[parts[0][1:]]} [0:0]"
                kept.append(line)
            cleaned[table] = kept
        others = {t: ls for t, ls in cleaned.items() if ls != self.snapshot.get(t)}
        target = {t: self.snapshot[t] for t in now if t in self.snapshot}
        if others:
            target = cleaned
        changed = {t: ls for t, ls in target.items() if ls != now.get(t)}
        if changed:
            r = subprocess.run([f"{self.family}-restore"], input=_restore_text(changed),
                               capture_output=True, text=True)
            if r.returncode != 0:
                return [f"{self.family}-restore failed: {r.stderr.strip()[-160:]}"]
        after = self._read()
        problems = []
        for table, lines in after.items():
            left = [line for line in lines if "DOCKER" in line or BRIDGE in line]
            if left:
                problems.append(f"{self.family} {table}: Docker's lines left: {left[:3]}")
            want = _policies(self.snapshot.get(table, []))
            got = _policies(lines)
            for chain, policy in want.items():
                if got.get(chain) != policy:
                    problems.append(f"{self.family} {table} {chain} policy {got.get(chain)}, "
                                    f"was {policy}")
        if not others and after != target:
            problems.append(f"{self.family}-save differs from the snapshot")
        if others:
            problems.append(f"(note) {self.family}: other rules changed meanwhile, kept: "
                            f"{sorted(others)}")
        return problems


def _pids_mentioning(marker: str) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if marker in (d / "cmdline").read_bytes().decode(errors="replace"):
                out.append(int(d.name))
        except OSError:
            continue
    return out


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path).rstrip("/") + "/"
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(prefix) or point == prefix[:-1]:
                found.append(point)
    return found


class Docker:
    """A private dockerd driven with the `docker` client; `stop()` undoes everything."""

    def __init__(self, ctx: Context, archive: Path | None = None,
                 insecure_registries: Sequence[str] = ()) -> None:
        if os.geteuid() != 0:
            raise NotAvailable("dockerd needs root")
        ctx.ensure_debs("docker.io")
        self.ctx = ctx
        client = shutil.which("docker")
        if client is None:
            raise NotAvailable("no docker client on PATH")
        self.client = client
        if not shutil.which("dockerd"):
            raise NotAvailable("docker.io installed but dockerd is missing")
        if SYSTEM_CONTAINERD.exists():  # dockerd would use it instead of its own
            raise NotAvailable(f"a system containerd answers at {SYSTEM_CONTAINERD}")
        self.dir = Path(tempfile.mkdtemp(prefix="ps-docker-", dir="/var/tmp"))
        self.marker = str(self.dir)
        self.socket = self.dir / "docker.sock"
        self.exec_root = self.dir / "exec"
        self.data_root = self.dir / "data"
        # dockerd's managed containerd (--config <exec-root>/containerd/containerd.toml)
        # and its shims (-address <exec-root>/containerd/containerd.sock) name this
        self.containerd_dir = str(self.exec_root / "containerd")
        # its identity key, else /etc/docker/key.json (no flag for it in 20.10); registries
        # it may reach over plain http (the benchmarks' own, on 127.0.0.1)
        config: dict[str, object] = {"deprecated-key-path": str(self.dir / "key.json")}
        if insecure_registries:
            config["insecure-registries"] = list(insecure_registries)
        (self.dir / "daemon.json").write_text(json.dumps(config) + "\n")
        (self.dir / "cli").mkdir()
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{self.socket}",
                    "DOCKER_CONFIG": str(self.dir / "cli")}
        self.proc: subprocess.Popen[bytes] | None = None
        self.had_run_containerd = Path("/run/containerd").exists()
        self.had_key = KEY.exists()
        self.firewalls: list[_Firewall] = []
        self.sysctls: dict[str, str] = {}
        try:
            self._start()
            if archive is not None:
                self("load", "-i", str(archive))
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        for name in SYSCTLS:
            with contextlib.suppress(OSError):
                self.sysctls[name] = Path("/proc/sys", name).read_text().strip()
        self.firewalls = [_Firewall("iptables"), _Firewall("ip6tables")]
        if _run("ip", "link", "show", BRIDGE).returncode == 0:  # left by a killed run
            _run("ip", "link", "del", BRIDGE)
        for command in (("ip", "link", "add", BRIDGE, "type", "bridge"),
                        ("ip", "addr", "add", BRIDGE_ADDRESS, "dev", BRIDGE),
                        ("ip", "link", "set", BRIDGE, "up")):
            r = _run(*command)
            if r.returncode != 0:
                raise NotAvailable(f"cannot make bridge {BRIDGE}: {r.stderr.strip()[-120:]}")
        log = open(self.dir / "dockerd.log", "ab")  # noqa: SIM115 - the daemon's
        self.proc = subprocess.Popen(
            ["dockerd", "--host", f"unix://{self.socket}", "--data-root", str(self.data_root),
             "--exec-root", str(self.exec_root), "--pidfile", str(self.dir / "dockerd.pid"),
             "--config-file", str(self.dir / "daemon.json"), "--storage-driver", "overlay2",
             "--default-ulimit", "nofile=20000:20000", "--bridge", BRIDGE],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 60
        while True:
            r = subprocess.run([self.client, "version", "--format", "{{.Server.Version}}"],
                               env=self.env, capture_output=True, text=True)
            if r.returncode == 0:
                self.version = r.stdout.strip()
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = (self.dir / "dockerd.log").read_text(errors="replace").strip()
                last = [line for line in tail.splitlines() if "level=error" in line
                        or "failed" in line.lower()][-1:] or tail.splitlines()[-1:]
                raise NotAvailable(f"dockerd did not start: {last[0][-200:] if last else '?'}")
            time.sleep(0.1)
        containerd = [p for p in _pids_mentioning(self.containerd_dir)
                      if _comm(p) == "containerd"]
        self.ctx.log(f"dockerd {self.version} (client {self.client}), its own containerd: "
                     f"{'pid ' + str(containerd[0]) if containerd else 'not found'}")

    def __call__(self, *args: str) -> str:
        r = subprocess.run([self.client, *args], env=self.env, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise NotAvailable(f"docker {args[0]} failed: {r.stderr.strip()[-160:]}")
        return r.stdout

    def client_for(self, client: str | None = None, **env: str) -> DockerClient:
        """A client of this dockerd: `client` (else the one first on PATH) with `env` added
        to its environment (`DOCKER_BUILDKIT="1"`)."""
        return DockerClient(client or self.client, {**self.env, **env}, "dockerd")

    def shim_pids(self) -> list[int]:
        """The containerd-shim-runc-v2 processes of this dockerd's containerd."""
        return [p for p in _pids_mentioning(self.containerd_dir)
                if _comm(p).startswith("containerd-shim")]

    def stop(self) -> list[str]:
        """Stop everything, put the host back; returns what could not be put back."""
        problems: list[str] = []
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(NotAvailable):
                ids = self("ps", "-aq").split()
                if ids:
                    self("rm", "-f", *ids)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                problems.append("dockerd did not stop in 60 s; killed")
                self.proc.kill()
                self.proc.wait()
        deadline = time.monotonic() + 10
        while _pids_mentioning(self.marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in _pids_mentioning(self.marker):  # containerd or shims dockerd left
            problems.append(f"killed leftover {_comm(pid)} ({pid})")
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for point in sorted(_mounts_under(self.dir), key=len, reverse=True):
            if _run("umount", "-R", point).returncode != 0:
                _run("umount", "-l", point)
        left = _mounts_under(self.dir)
        if left:
            problems.append(f"mounts left: {left[:3]}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        if _run("ip", "link", "show", BRIDGE).returncode == 0:
            _run("ip", "link", "del", BRIDGE)
        for fw in self.firewalls:
            problems += fw.restore()
        for name, value in self.sysctls.items():
            path = Path("/proc/sys", name)
            with contextlib.suppress(OSError):
                if path.read_text().strip() != value:
                    path.write_text(value)
                    problems.append(f"(note) {name} put back to {value}")
        if not self.had_run_containerd:  # the shims' socket directory, /run/containerd/s
            with contextlib.suppress(OSError):
                for sub in ("s", ""):
                    Path("/run/containerd", sub).rmdir()
        if not self.had_key and KEY.exists():
            KEY.unlink()
            problems.append(f"(note) removed {KEY} it wrote")
        for p in problems:
            self.ctx.log(f"docker cleanup: {p}")
        self.proc = None
        return problems


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


@dataclass(frozen=True)
class DockerClient:
    """One `docker` client binary and the environment that points it at one daemon."""

    exe: str
    env: dict[str, str]
    daemon: str  # for messages: "dockerd", "portside"

    def __call__(self, *args: str) -> str:
        """Run it; its output, or NotAvailable with its last error line."""
        r = subprocess.run([self.exe, *args], env=self.env, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            tail = (r.stderr or r.stdout).strip().splitlines()[-1:]
            raise NotAvailable(f"docker {args[0]} through {self.daemon} failed: "
                               f"{tail[0][-200:] if tail else r.returncode}")
        return r.stdout

    def ok(self, *args: str) -> bool:
        """Run it where failing is an answer (`image inspect`, `rmi` of what may be absent)."""
        return subprocess.run([self.exe, *args], env=self.env, capture_output=True,
                              stdin=subprocess.DEVNULL).returncode == 0

    def timed(self, *args: str) -> float:
        """Wall-clock seconds of one successful run, client start-up included."""
        start = time.perf_counter()
        self(*args)
        return time.perf_counter() - start

    def with_env(self, **env: str) -> DockerClient:
        return replace(self, env={**self.env, **env})
