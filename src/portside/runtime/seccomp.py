"""Seccomp for the OCI spec: resolve a Docker-format profile (ours by default, or a user's
JSON file) against the container's capabilities and the host architecture.

Docker's profiles carry conditions (`includes`/`excludes` on `caps`, `arches`,
`minKernel`) that the runtime spec has no words for; they are decided here, once, when
the spec is written, exactly as dockerd does.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from portside.errors import InvalidArgument

# uname machine -> the Go/Docker arch names used in profile conditions, and libseccomp's.
_ARCHES = {
    "x86_64": ("amd64", "SCMP_ARCH_X86_64"),
    "aarch64": ("arm64", "SCMP_ARCH_AARCH64"),
    "armv7l": ("arm", "SCMP_ARCH_ARM"),
    "ppc64le": ("ppc64le", "SCMP_ARCH_PPC64LE"),
    "s390x": ("s390x", "SCMP_ARCH_S390X"),
    "riscv64": ("riscv64", "SCMP_ARCH_RISCV64"),
}


def host_arch() -> tuple[str, str]:
    machine = platform.machine()
    return _ARCHES.get(machine, (machine, "SCMP_ARCH_NATIVE"))


def _kernel() -> tuple[int, int]:
    parts = os.uname().release.split(".")
    try:
        return int(parts[0]), int(parts[1].split("-")[0])
    except (IndexError, ValueError):
        return (0, 0)


def _applies(rule: dict[str, Any], caps: set[str], arch: str) -> bool:
    inc = rule.get("includes") or {}
    exc = rule.get("excludes") or {}
    if inc.get("caps") and not all(c in caps for c in inc["caps"]):
        return False
    if inc.get("arches") and arch not in inc["arches"]:
        return False
    if inc.get("minKernel"):
        want = tuple(int(x) for x in str(inc["minKernel"]).split(".")[:2])
        if _kernel() < want:
            return False
    if exc.get("caps") and any(c in caps for c in exc["caps"]):
        return False
    return not (exc.get("arches") and arch in exc["arches"])


def resolve(profile: dict[str, Any], caps: list[str]) -> dict[str, Any]:
    """The OCI `linux.seccomp` object for a container holding `caps` on this host."""
    arch, scmp_arch = host_arch()
    capset = set(caps)
    out: dict[str, Any] = {"defaultAction": profile.get("defaultAction", "SCMP_ACT_ERRNO")}
    if "defaultErrnoRet" in profile:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    arches: list[str] = list(profile.get("architectures") or [])
    for entry in profile.get("archMap") or []:
        if entry.get("architecture") == scmp_arch:
            arches = [scmp_arch, *entry.get("subArchitectures", [])]
    if arches:
        out["architectures"] = arches
    if profile.get("flags"):
        out["flags"] = profile["flags"]
    rules = []
    for rule in profile.get("syscalls") or []:
        if not _applies(rule, capset, arch):
            continue
        names = rule.get("names") or ([rule["name"]] if rule.get("name") else [])
        if not names:
            continue
        item: dict[str, Any] = {"names": list(names), "action": rule["action"]}
        if "errnoRet" in rule:
            item["errnoRet"] = rule["errnoRet"]
        if rule.get("args"):
            item["args"] = rule["args"]
        rules.append(item)
    out["syscalls"] = rules
    return out


def load(seccomp: str, caps: list[str], privileged: bool = False) -> dict[str, Any] | None:
    """`seccomp` is "default", "unconfined" or a path to a Docker-format JSON profile.
    Privileged containers run unconfined, as in Docker."""
    if seccomp == "unconfined" or (privileged and seccomp == "default"):
        return None
    if seccomp in ("default", ""):
        from portside.runtime.seccomp_profile import DEFAULT_PROFILE

        return resolve(DEFAULT_PROFILE, caps)
    path = Path(seccomp)
    try:
        profile = json.loads(path.read_text())
    except OSError as e:
        raise InvalidArgument(f"seccomp profile {path}: {e.strerror}") from None
    except ValueError as e:
        raise InvalidArgument(f"seccomp profile {path}: not valid JSON: {e}") from None
    if not isinstance(profile, dict) or "defaultAction" not in profile:
        raise InvalidArgument(f"seccomp profile {path}: no defaultAction")
    return resolve(profile, caps)
