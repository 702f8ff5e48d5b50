"""RUN: execute a command in a container made from the stage's current filesystem.

The stage's layers (as shared snapshots) are the container's read-only lower directories;
what the command writes lands in the overlay's upper directory, which becomes the step's
layer (overlay whiteouts turned into OCI ones). `--mount` targets (cache, secret, bind,
tmpfs) are mounts, never part of the upper directory, and the mount points the runtime had
to create are removed before the layer is written, so nothing mounted lands in a layer.
Network is the host's by default (BuildKit's default gives network access), none with
`--network=none`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import shutil
import tempfile
import threading
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portside.build import dockerignore
from portside.build.cache import step_key
from portside.build.errors import BuildError
from portside.build.instructions import Instruction
from portside.build.state import DEFAULT_PATH, StageState
from portside.store.layers import LayerResult

if TYPE_CHECKING:
    from portside.build.executor import BuildRun
    from portside.runtime import Mount

RUN_MISSING = "RUN needs the container runtime, which this build of portside does not have yet"
DEFAULT_MOUNT_POINTS = (
    "/proc",
    "/sys",
    "/sys/fs/cgroup",
    "/dev",
    "/dev/pts",
    "/dev/shm",
    "/dev/mqueue",
    "/etc/resolv.conf",
    "/etc/hosts",
)
TAIL = 10
_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY")
PROXY_ARGS = frozenset((*_PROXIES, *(p.lower() for p in _PROXIES)))
LAST_LINES = 3  # of output, in the message of a failed RUN
SCRIPT = "/dev/.portside-run-script"


def command(state: StageState, inst: Instruction) -> tuple[list[str], str | None]:
    """The argv of a RUN, and the script to mount when it is a here-document with a #!."""
    if inst.json_form:
        return list(inst.words), None
    text = inst.words[0] if inst.words else ""
    docs = inst.heredocs
    if (
        docs
        and len(docs) == 1
        and text.strip().lstrip("0123456789").startswith("<<")
        and len(text.split()) == 1
    ):
        body = docs[0].content
        if body.startswith("#!"):
            return [SCRIPT], body  # BuildKit runs a #! heredoc as the program it names
        return [*state.shell, body], None
    if docs:
        # The shell reads the here-documents itself, from the text after the command line.
        text = text + "\n" + "".join(d.content + d.name + "\n" for d in docs)
    return [*state.shell, text], None


def plan(
    run: BuildRun, state: StageState, inst: Instruction, env: dict[str, str]
) -> tuple[str, Callable[[], LayerResult | None]]:
    try:
        import portside.runtime  # noqa: F401
    except ImportError:
        raise BuildError(run.path, inst.line, RUN_MISSING) from None
    argv, script = command(state, inst)
    run_env = state.run_env()
    run_env.setdefault("PATH", DEFAULT_PATH)
    network = str(inst.flags.get("network") or run.network)
    binds: list[dict[str, Any]] = []
    for m in inst.mounts:
        entry: dict[str, Any] = dict(m)
        if m["type"] == "bind":
            entry["content"] = _bind_digest(run, inst, m)
        binds.append(entry)
    key = step_key(
        state.key,
        inst.original,
        argv=argv,
        script=script,
        env=sorted(f"{k}={v}" for k, v in run_env.items()),
        user=state.config.get("User"),
        workdir=state.workdir,
        network=network,
        mounts=binds,
    )

    def execute() -> LayerResult | None:
        # Docker's predefined proxy args reach RUN without an ARG, and stay out of the key.
        proxies = {k: v for k, v in run.build_args.items() if k in PROXY_ARGS}
        run.used_args.update(proxies)
        return _execute(run, state, inst, argv, script, {**proxies, **run_env}, network)

    return key, execute


def _bind_digest(run: BuildRun, inst: Instruction, m: dict[str, str]) -> str:
    source = m.get("from")
    if source:
        stage = run.stage_state(source)
        return stage.key if stage is not None else run.image_for(inst, source).manifest_digest
    rel = dockerignore.clean(m.get("source", ""))
    matches = run.ctx.match(rel or ".")
    if not matches:
        raise BuildError(
            run.path,
            inst.line,
            f"RUN --mount=type=bind: {m.get('source', '/')!r} not found in the build context",
        )
    return run.ctx.content_digest(list(run.ctx.tree(matches[0])))


def _cache_dir(run: BuildRun, m: dict[str, str], target: str, locks: list[int]) -> Path:
    """The directory of a cache mount. `sharing=locked` waits for other builds using it;
    `private` takes another directory of the same id when it is in use; `shared` neither."""
    import fcntl

    ident = m.get("id") or target
    base = (
        run.store.root / "build" / "cache-mounts" / hashlib.sha256(ident.encode()).hexdigest()[:32]
    )
    sharing = m.get("sharing", "shared")
    for n in range(1000):
        host = base if n == 0 else base.with_name(f"{base.name}-{n}")
        if not host.is_dir():
            host.mkdir(parents=True, mode=0o755)
            os.chown(host, int(m.get("uid", "0")), int(m.get("gid", "0")))
            os.chmod(host, int(m.get("mode", "755"), 8))
        if sharing == "shared":
            return host
        fd = os.open(host.with_name(host.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (fcntl.LOCK_NB if sharing == "private" else 0))
        except BlockingIOError:
            os.close(fd)
            continue
        locks.append(fd)
        return host
    raise BuildError(
        run.path, 0, f"RUN --mount=type=cache,id={ident}: every private copy is in use"
    )


def _mounts(
    run: BuildRun,
    state: StageState,
    inst: Instruction,
    scratch: Path,
    network: str,
    script: str | None,
    locks: list[int],
) -> list[Mount]:
    from portside.runtime import Mount

    out: list[Mount] = []
    for m in inst.mounts:
        kind, target = m["type"], posixpath.join(state.workdir, m.get("target", ""))
        readonly = m.get("readonly", "false") == "true" or (
            kind == "bind" and m.get("rw", m.get("readwrite", "false")) != "true"
        )
        if kind == "cache":
            host = _cache_dir(run, m, target, locks)
            out.append(Mount(target, "bind", str(host), ["ro"] if readonly else []))
        elif kind == "secret":
            sid = m["id"]
            path = run.secrets.get(sid)
            if path is None:
                if m.get("required", "false") == "true":
                    raise BuildError(
                        run.path,
                        inst.line,
                        f"RUN: secret {sid!r} is required but"
                        f" was not given (--secret id={sid},src=FILE)",
                    )
                continue
            copy = scratch / f"secret-{len(out)}"
            if isinstance(path, bytes):
                copy.write_bytes(path)
            else:
                shutil.copyfile(path, copy)  # a private copy: the mode asked for, not the file's
            os.chown(copy, int(m.get("uid", "0")), int(m.get("gid", "0")))
            os.chmod(copy, int(m.get("mode", "400"), 8))
            out.append(Mount(target, "bind", str(copy), ["ro"]))
        elif kind == "bind":
            out.append(
                Mount(
                    target,
                    "bind",
                    str(_bind_source(run, inst, m, scratch, readonly)),
                    ["ro"] if readonly else [],
                )
            )
        elif kind == "tmpfs":
            size = m.get("size")
            out.append(Mount(target, "tmpfs", "tmpfs", [f"size={size}"] if size else []))
        else:
            raise BuildError(run.path, inst.line, f"RUN --mount=type={kind} is not supported")
    if network != "none":
        for name in ("resolv.conf", "hosts"):
            if Path("/etc", name).is_file():
                out.append(Mount(f"/etc/{name}", "bind", f"/etc/{name}", ["ro"]))
    if script is not None:
        path = scratch / "script"
        path.write_text(script)
        path.chmod(0o755)
        out.append(Mount(SCRIPT, "bind", str(path), ["ro"]))
    return out


def _bind_source(
    run: BuildRun, inst: Instruction, m: dict[str, str], scratch: Path, readonly: bool
) -> Path:
    rel = dockerignore.clean(m.get("source", ""))
    source = m.get("from")
    if source:
        from portside.build.stagefs import StageFS

        stage = run.stage_state(source)
        layers = (
            stage.layers if stage is not None else run.image_layers(run.image_for(inst, source))
        )
        top = Path(tempfile.mkdtemp(dir=scratch, prefix="bind-"))
        StageFS(run.store.content, layers).export(rel, top / "src")
        return top / "src"
    path = run.ctx.root / rel if rel else run.ctx.root
    if not run.ctx.resolves_inside(rel):
        raise BuildError(
            run.path,
            inst.line,
            f"RUN --mount=type=bind: {m.get('source', '/')!r} leads outside the build context",
        )
    if readonly:
        return path
    copy = Path(tempfile.mkdtemp(dir=scratch, prefix="bind-")) / "src"
    if path.is_dir():
        shutil.copytree(path, copy, symlinks=True)
    else:
        shutil.copy2(path, copy)
    return copy  # writes go to a throwaway copy, never to the user's context


def _execute(
    run: BuildRun,
    state: StageState,
    inst: Instruction,
    argv: list[str],
    script: str | None,
    env: dict[str, str],
    network: str,
) -> LayerResult:

    rt = run.runtime()
    scratch = Path(tempfile.mkdtemp(dir=run.tmp, prefix="run-"))
    locks: list[int] = []
    try:
        return _run_container(run, state, inst, argv, script, env, network, rt, scratch, locks)
    finally:
        for fd in locks:
            os.close(fd)
        shutil.rmtree(scratch, ignore_errors=True)


def _run_container(
    run: BuildRun,
    state: StageState,
    inst: Instruction,
    argv: list[str],
    script: str | None,
    env: dict[str, str],
    network: str,
    rt: Any,
    scratch: Path,
    locks: list[int],
) -> LayerResult:
    from portside.errors import PortsideError
    from portside.runtime import ContainerSpec, read_logs
    from portside.store.layers import walk, write_entries

    lowers = _lowerdirs(run, state, scratch)
    spec = ContainerSpec(
        id=uuid.uuid4().hex,
        name=f"build-{inst.line}",
        lowerdirs=lowers,
        args=argv,
        env=[f"{k}={v}" for k, v in env.items()],
        cwd=state.workdir,
        user=str(state.config.get("User") or ""),
        mounts=_mounts(run, state, inst, scratch, network, script, locks),
        network_namespace="host" if network != "none" else None,
        hostname="buildkitsandbox",
        labels={"io.portside.build": run.path},
    )
    for m in inst.mounts:  # RUN --mount=type=secret,env=NAME: the value in that variable
        value = run.secrets.get(m.get("id", "")) if m["type"] == "secret" else None
        if value is not None and m.get("env"):
            data = value if isinstance(value, bytes) else value.read_bytes()
            spec.env.append(f"{m['env']}={data.decode('utf-8', 'replace')}")
    tail: deque[str] = deque(maxlen=TAIL)
    try:
        rt.create(spec)
    except PortsideError as exc:
        raise BuildError(run.path, inst.line, f"RUN: {exc}") from None
    try:
        done = threading.Event()
        result: dict[str, int] = {}

        def wait() -> None:
            try:
                result["code"] = rt.wait(spec.id)
            finally:
                done.set()

        rt.start(spec.id)
        waiter = threading.Thread(target=wait, daemon=True)
        waiter.start()
        stop = lambda: done.is_set() or run.progress.cancelled()  # noqa: E731
        for entry in read_logs(rt.log_path(spec.id), follow=True, stop=stop):
            line = entry.data.decode("utf-8", "replace").rstrip("\n")
            tail.append(line)
            run.progress.output(line)
        if not done.is_set() and run.progress.cancelled():
            raise BuildError(run.path, inst.line, "RUN: stopped, the build was cancelled")
        waiter.join()
        code = result.get("code", -1)
        if code != 0:
            # The last lines of output, on the error's one line (they were streamed above,
            # but a --quiet build or a CI summary shows only this message).
            last = [t.strip() for t in tail if t.strip()][-LAST_LINES:]
            shown = inst.original if len(inst.original) <= 60 else inst.original[:59] + "…"
            detail = " (no output)"
            if last:
                text = " | ".join(last)
                detail = ": " + (text if len(text) <= 300 else "…" + text[-299:])
            raise BuildError(
                run.path, inst.line, f"{shown} failed with exit code {code}{detail}", status=code
            )
        upper = rt.upperdir(spec.id)
        _remove_mount_points(run, state, upper, [m.destination for m in spec.mounts])
        from portside.build.stagefs import remember_index

        entries = list(walk(upper, epoch=run.epoch, overlay=True))
        layer = write_entries(run.store.content, entries, run.compression)
        remember_index(layer.diff_id, [info for info, _ in entries])
        return layer
    finally:
        with contextlib.suppress(Exception):
            rt.delete(spec.id, force=True)


def _lowerdirs(run: BuildRun, state: StageState, scratch: Path) -> list[Path]:
    """The stage's layer snapshots, top-most first (an empty dir for a stage from scratch)."""
    from portside.oci.model import Descriptor

    paths: list[Path] = []
    for layer in reversed(state.layers):
        desc = Descriptor(layer.media_type, layer.digest, layer.size)
        path = run.store.snapshots.prepare(desc, layer.diff_id)
        if path not in paths:
            paths.append(path)
    if not paths:
        empty = scratch / "empty"
        empty.mkdir()
        paths.append(empty)
    return paths


def _remove_mount_points(run: BuildRun, state: StageState, upper: Path, targets: list[str]) -> None:
    """Drop the empty files and directories the runtime created to mount on, and the
    directories overlayfs copied up only to hold them (empty, metadata unchanged)."""
    fs = run.fs(state)
    for target in [*DEFAULT_MOUNT_POINTS, *targets]:
        rel = posixpath.normpath(target).lstrip("/")
        while rel:
            path = upper / rel
            lower = fs.lookup("/" + rel)
            with contextlib.suppress(OSError):
                if lower is None:
                    if path.is_dir() and not path.is_symlink():
                        path.rmdir()  # only when empty: anything the command wrote stays
                    elif path.is_file() and path.stat().st_size == 0:
                        path.unlink()
                elif lower.is_dir and path.is_dir() and not path.is_symlink():
                    st = path.lstat()
                    same = (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (
                        lower.mode & 0o7777,
                        lower.uid,
                        lower.gid,
                    )
                    opaque = "trusted.overlay.opaque" in os.listxattr(path, follow_symlinks=False)
                    if same and not opaque and not any(path.iterdir()):
                        path.rmdir()
                else:
                    break
            rel = posixpath.dirname(rel)
