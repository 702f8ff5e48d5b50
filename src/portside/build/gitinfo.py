"""Traceability: the git commit, remote and state of a build context, via the `git` command."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from portside.numbers import is_digits

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


def describe(context: Path, commit_time: bool = False) -> GitInfo | None:
    """What git says of the checkout holding `context`, or None when it is not one.

    Two `git` calls on the common path (status with the commit, and the remotes), so a
    cached rebuild stays fast; the commit time (for --reproducible) costs a third.
    """
    if shutil.which("git") is None:
        return None
    status = _git(
        context, "status", "--porcelain=v2", "--branch", "--untracked-files=normal", "--", "."
    )
    if status is None:
        return None  # not a checkout
    lines = status.splitlines()
    revision = next((ln.split()[2] for ln in lines if ln.startswith("# branch.oid ")), "")
    if not revision or revision == "(initial)":
        return None  # a repository without commits
    dirty = any(not ln.startswith("#") for ln in lines)
    remotes: dict[str, str] = {}
    for line in (_git(context, "config", "--get-regexp", r"^remote\..*\.url$") or "").splitlines():
        key, _, url = line.partition(" ")
        remotes[key[len("remote.") : -len(".url")]] = url
    remote = remotes.get("origin") or next(iter(remotes.values()), "")
    when = _git(context, "log", "-1", "--format=%ct") if commit_time else None
    return GitInfo(
        revision, strip_credentials(remote), dirty, int(when) if when and is_digits(when) else 0
    )
