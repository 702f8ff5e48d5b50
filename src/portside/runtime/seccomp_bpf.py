"""Compile an OCI seccomp section to the kernel's BPF with libseccomp, once per profile.

crun otherwise compiles the profile on every `create` (tens of milliseconds for Docker's
~350 syscalls on three architectures, most of a container's start-up). crun accepts the
finished program in the `run.oci.seccomp_bpf_data` annotation (base64) and then skips its
own compilation; the result is cached per profile in this process. The rules mirror the
runtimes': unknown syscall names are skipped, rules of one syscall are ORed, the
conditions of one rule ANDed. A rule libseccomp refuses is left out, which can only
deny more (every refused rule is an exception to a deny-by-default action or repeats it).
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import ctypes.util
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

_ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000,
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000,
    "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_ALLOW": 0x7FFF0000,
}
_OPS = {
    "SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7,
}
_ARCHES = {
    "SCMP_ARCH_X86": "x86", "SCMP_ARCH_X86_64": "x86_64", "SCMP_ARCH_X32": "x32",
    "SCMP_ARCH_ARM": "arm", "SCMP_ARCH_AARCH64": "aarch64", "SCMP_ARCH_PPC64LE": "ppc64le",
    "SCMP_ARCH_S390X": "s390x", "SCMP_ARCH_RISCV64": "riscv64",
}
EPERM = 1
_NR_SCMP_ERROR = -1
_ERRNO_ACTION = 0x00050000


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


_lib: ctypes.CDLL | None = None
_cache: dict[str, str] = {}
_lock = threading.Lock()


def _libseccomp() -> ctypes.CDLL | None:
    global _lib
    if _lib is None:
        name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
        try:
            lib = ctypes.CDLL(name, use_errno=True)
        except OSError:
            return None
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_release.argtypes = [ctypes.c_void_p]
        lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                               ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
        lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        _lib = lib
    return _lib


def _action(name: str, errno_ret: int | None, default_errno: int) -> int:
    base = _ACTIONS[name]
    if base == _ERRNO_ACTION:
        return base | ((errno_ret if errno_ret is not None else default_errno) & 0xFFFF)
    if name == "SCMP_ACT_TRACE":
        return base | ((errno_ret or 0) & 0xFFFF)
    return base


def compile_bpf(section: dict[str, Any]) -> bytes | None:
    """The BPF program for an OCI `linux.seccomp` section; None if libseccomp is missing
    or the section uses something we leave to the runtime (flags, notify, unknown actions)."""
    lib = _libseccomp()
    if lib is None or section.get("flags") or section.get("listenerPath"):
        return None
    actions = [section.get("defaultAction", "")] + [r.get("action", "")
                                                      for r in section.get("syscalls", [])]
    if any(a not in _ACTIONS for a in actions):
        return None
    default_errno = int(section.get("defaultErrnoRet", EPERM))
    default = _action(section["defaultAction"], section.get("defaultErrnoRet"), default_errno)
    ctx = lib.seccomp_init(default)
    if not ctx:
        return None
    try:
        for arch in section.get("architectures") or []:
            token = lib.seccomp_arch_resolve_name(_ARCHES.get(arch, arch.lower()).encode())
            # Adding the native arch again says EEXIST: harmless.
            if token:
                lib.seccomp_arch_add(ctx, token)
        for rule in section.get("syscalls") or []:
            action = _action(rule["action"], rule.get("errnoRet"), EPERM)
            if action == default:
                continue  # libseccomp refuses rules that repeat the default
            args = rule.get("args") or []
            cmps = (_ArgCmp * max(len(args), 1))()
            for i, a in enumerate(args):
                cmps[i] = _ArgCmp(int(a["index"]), _OPS[a["op"]], int(a.get("value", 0)),
                                  int(a.get("valueTwo", 0)))
            for name in rule.get("names") or []:
                nr = lib.seccomp_syscall_resolve_name(name.encode())
                if nr == _NR_SCMP_ERROR:
                    continue  # unknown to this libseccomp: skipped, as runc and crun do
                lib.seccomp_rule_add_array(ctx, action, nr, len(args), cmps)
        fd = os.memfd_create("seccomp-bpf")
        try:
            if lib.seccomp_export_bpf(ctx, fd) != 0:
                return None
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)


def annotation(section: dict[str, Any], cache_dir: Path | None = None) -> str | None:
    """base64 BPF for crun's `run.oci.seccomp_bpf_data`, compiled once per profile and
    libseccomp: kept in this process and, with `cache_dir`, on disk for the next one."""
    lib = _libseccomp()
    libname = getattr(lib, "_name", "") if lib is not None else ""
    doc = json.dumps({"section": section, "lib": os.path.realpath(libname) if libname else ""},
                     sort_keys=True)
    key = hashlib.sha256(doc.encode()).hexdigest()
    with _lock:
        if key in _cache:
            return _cache[key]
    path = cache_dir / f"seccomp-{key[:32]}.b64" if cache_dir is not None else None
    value: str | None = None
    if path is not None:
        with contextlib.suppress(OSError):
            value = path.read_text().strip() or None
    if value is None:
        bpf = compile_bpf(section)
        value = base64.b64encode(bpf).decode() if bpf else None
        if value is not None and path is not None:
            with contextlib.suppress(OSError):
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".tmp{os.getpid()}")
                tmp.write_text(value)
                os.replace(tmp, path)
    if value is not None:
        with _lock:
            _cache[key] = value
    return value
