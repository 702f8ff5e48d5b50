"""Traceability: the git commit, remote and state of a build context, via the `git` command."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REVISION = "org.opencontainers.image.revision"
SOURCE = "org.opencontainers.image.source"
CREATED = "org.opencontainers.image.created"
DIRTY = "io.portside.image.revision.dirty"


@dataclass(frozen=True)
class GitInfo:
    revision: str
    source: str  # remote URL without credentials, or "" when the checkout has no remote
    dirty: bool
    commit_time: int

    def labels(self, created: str) -> dict[str, str]:
        out = {REVISION: self.revision, CREATED: created, DIRTY: "true" if self.dirty else "false"}
        if self.source:
            out[SOURCE] = self.source
        return out


def _git(path: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(path), *args], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def strip_credentials(url: str) -> str:
    """`https://user:token@host/x.git` -> `https://host/x.git` (never leak a token in a label)."""
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@", r"\1", url)


def describe(context: Path) -> GitInfo | None:
    """What git says of the checkout holding `context`, or None when it is not one."""
    if shutil.which("git") is None:
        return None
    if _git(context, "rev-parse", "--is-inside-work-tree") != "true":
        return None
    revision = _git(context, "rev-parse", "HEAD")
    if not revision:
        return None  # a repository without commits
    remote = _git(context, "config", "--get", "remote.origin.url")
    if remote is None:
        first = (_git(context, "remote") or "").split()
        remote = _git(context, "config", "--get", f"remote.{first[0]}.url") if first else None
    status = _git(context, "status", "--porcelain", "--", ".")
    when = _git(context, "log", "-1", "--format=%ct")
    return GitInfo(
        revision,
        strip_credentials(remote or ""),
        bool(status),
        int(when) if when and when.isdigit() else 0,
    )
