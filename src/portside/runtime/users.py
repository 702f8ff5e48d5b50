"""Resolve a Docker `--user` ("name|uid[:group|gid]") against the container's own
/etc/passwd and /etc/group, as dockerd does: a name must exist, a number need not."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from portside.numbers import is_digits
from portside.runtime.errors import UserUnknown
from portside.runtime.rootpath import resolve_in_root


@dataclass
class ExecUser:
    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = field(default_factory=list)
    home: str = "/"


def _entries(rootfs: Path, name: str) -> list[list[str]]:
    try:
        text = resolve_in_root(rootfs, name).read_text(errors="replace")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            out.append(line.split(":"))
    return out


def _num(s: str) -> int | None:
    return int(s) if is_digits(s) else None


def resolve_user(rootfs: Path, user: str, group_add: list[str] | None = None) -> ExecUser:
    """uid, gid, supplementary gids and home of `user` in the container root."""
    name, _, group = (user or "").partition(":")
    passwd = [e for e in _entries(rootfs, "/etc/passwd") if len(e) >= 7]
    out = ExecUser()
    pw: list[str] | None = None
    if name == "":
        name = "0"
    uid = _num(name)
    for e in passwd:
        if (uid is None and e[0] == name) or (uid is not None and _num(e[2]) == uid):
            pw = e
            break
    if pw is None and uid is None:
        raise UserUnknown("user", name, "/etc/passwd")
    if pw is not None:
        out.uid, out.gid, out.home = _num(pw[2]) or 0, _num(pw[3]) or 0, pw[5] or "/"
    else:
        out.uid = uid or 0
    groups = [e for e in _entries(rootfs, "/etc/group") if len(e) >= 3]
    if group:
        gid = _num(group)
        if gid is None:
            match = [e for e in groups if e[0] == group]
            if not match:
                raise UserUnknown("group", group, "/etc/group")
            gid = _num(match[0][2]) or 0
        out.gid = gid
    elif pw is not None:
        # Supplementary groups from /etc/group membership, only for a user with an entry.
        for e in groups:
            members = e[3].split(",") if len(e) > 3 else []
            g = _num(e[2])
            if pw[0] in members and g is not None and g != out.gid:
                out.additional_gids.append(g)
    for extra in group_add or []:
        g = _num(extra)
        if g is None:
            match = [e for e in groups if e[0] == extra]
            if not match:
                raise UserUnknown("group", extra, "/etc/group")
            g = _num(match[0][2]) or 0
        if g not in out.additional_gids:
            out.additional_gids.append(g)
    return out
