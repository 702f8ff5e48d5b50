"""Secrets and configs of a project on a tmpfs: never on disk, never in an image layer.

`<root>/compose/<project>/run` gets its own small tmpfs (mode 0700); each service's
secrets and configs are written there as `<kind>/<service>/<name>` with the mode, uid and
gid the service asks for, and bind-mounted read-only into its containers (secrets under
/run/secrets/). `down` unmounts it. An `external: true` secret is not written here: it is
the daemon's (`portside secret create`), and the engine writes it at container start.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from portside import config
from portside.compose.errors import ComposeError
from portside.compose.model import FileRef, Project, Secret, Service


def path_of(project: Project) -> Path:
    return config.root() / "compose" / project.name / "run"


def _is_tmpfs(path: Path) -> bool:
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[4] == str(path) and fields[sep + 1] == "tmpfs":
                return True
    return False


def _content(project: Project, kind: str, secret: Secret) -> bytes:
    if secret.file is not None:
        try:
            return Path(secret.file).read_bytes()
        except OSError as exc:
            raise ComposeError("", f"{kind}.{secret.name}.file",
                               f"cannot read {secret.file}: {exc.strerror}") from None
    if secret.environment is not None:
        value = project.environment.get(secret.environment)
        if value is None:
            raise ComposeError("", f"{kind}.{secret.name}.environment",
                               f"variable {secret.environment} is not set")
        return value.encode()
    return (secret.content or "").encode()


def prepare(project: Project, services: list[Service]) -> Path | None:
    """Write what `services` use; returns the directory (None when nothing is used)."""
    if not any(s.configs or any(not project.secrets[r.source].external for r in s.secrets)
               for s in services):
        return None  # nothing to write here (external secrets come from the daemon's store)
    base = path_of(project)
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not _is_tmpfs(base):
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700,nosuid,nodev,"
                               "noexec", "tmpfs", str(base)], capture_output=True, text=True)
        if done.returncode != 0:
            raise ComposeError("", "", f"cannot mount a tmpfs for secrets on {base}:"
                               f" {done.stderr.strip()}")
    for service in services:
        for kind, refs in (("secrets", service.secrets), ("configs", service.configs)):
            for ref in refs:
                _write(base / kind / service.name, project, kind, ref)
    return base


def _write(folder: Path, project: Project, kind: str, ref: FileRef) -> None:
    folder.mkdir(parents=True, exist_ok=True, mode=0o755)
    source = getattr(project, kind)[ref.source]
    if source.external and kind == "secrets":
        return  # from the daemon's secret store, written by the engine at start
    if source.external:
        raise ComposeError("", f"{kind}.{ref.source}", "external configs are not supported"
                           " yet (external secrets come from `portside secret create`)")
    target = folder / ref.source
    tmp = folder / f".{ref.source}.tmp"
    tmp.write_bytes(_content(project, kind, source))
    os.chmod(tmp, ref.mode if ref.mode is not None else 0o444)
    os.chown(tmp, int(ref.uid or 0), int(ref.gid or 0))
    os.replace(tmp, target)


def remove(project: Project) -> None:
    """Unmount and delete the project's secrets directory (if any)."""
    base = path_of(project)
    if not base.exists():
        return
    if _is_tmpfs(base):
        subprocess.run(["umount", str(base)], capture_output=True, check=False)
    for folder in (base, base.parent):
        try:
            if folder == base:
                for child in sorted(base.rglob("*"), reverse=True):
                    child.rmdir() if child.is_dir() else child.unlink()
            folder.rmdir()
        except OSError:
            pass
