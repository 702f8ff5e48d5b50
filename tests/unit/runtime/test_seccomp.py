"""The default seccomp profile resolved for a container's capabilities."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portside.errors import InvalidArgument
from portside.runtime import seccomp
from portside.runtime.seccomp_profile import DEFAULT_PROFILE
from portside.runtime.spec import DEFAULT_CAPS


def _allowed(profile: dict) -> set[str]:  # type: ignore[type-arg]
    return {n for r in profile["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args")
            for n in r["names"]}


def test_default_denies_with_eperm_and_covers_host_arch() -> None:
    p = seccomp.load("default", DEFAULT_CAPS)
    assert p is not None
    assert p["defaultAction"] == "SCMP_ACT_ERRNO" and p["defaultErrnoRet"] == 1
    _, scmp = seccomp.host_arch()
    if scmp in ("SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"):
        assert p["architectures"][0] == scmp and len(p["architectures"]) > 1


def test_ordinary_syscalls_allowed_dangerous_ones_not() -> None:
    p = seccomp.load("default", DEFAULT_CAPS)
    assert p is not None
    allowed = _allowed(p)
    for name in ("read", "write", "openat", "execve", "clone", "futex", "epoll_wait"):
        assert name in allowed or any(name in r["names"] for r in p["syscalls"])
    for name in ("mount", "umount2", "unshare", "setns", "init_module", "finit_module",
                 "kexec_load", "keyctl", "add_key", "bpf", "reboot", "swapon",
                 "open_by_handle_at", "userfaultfd"):
        assert name not in allowed, name


def test_capabilities_unlock_their_syscalls() -> None:
    p = seccomp.load("default", [*DEFAULT_CAPS, "CAP_SYS_ADMIN", "CAP_SYS_MODULE",
                                 "CAP_SYS_PTRACE"])
    assert p is not None
    allowed = _allowed(p)
    assert {"mount", "unshare", "setns", "init_module", "ptrace", "clone3"} <= allowed


def test_clone_without_sys_admin_is_filtered_on_namespace_flags() -> None:
    p = seccomp.load("default", DEFAULT_CAPS)
    assert p is not None
    clone = [r for r in p["syscalls"] if r["names"] == ["clone"]]
    assert clone and clone[0]["args"][0]["op"] == "SCMP_CMP_MASKED_EQ"
    clone3 = [r for r in p["syscalls"] if r["names"] == ["clone3"]]
    assert clone3[0]["action"] == "SCMP_ACT_ERRNO" and clone3[0]["errnoRet"] == 38


def test_unconfined_and_privileged() -> None:
    assert seccomp.load("unconfined", DEFAULT_CAPS) is None
    assert seccomp.load("default", DEFAULT_CAPS, privileged=True) is None


def test_docker_format_file(tmp_path: Path) -> None:
    f = tmp_path / "p.json"
    f.write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
                     {"name": "chmod", "action": "SCMP_ACT_ERRNO",
                      "excludes": {"caps": ["CAP_FOWNER"]}}],
    }))
    p = seccomp.load(str(f), ["CAP_FOWNER"])
    assert p is not None
    assert p["defaultAction"] == "SCMP_ACT_ALLOW"
    assert [r["names"] for r in p["syscalls"]] == [["mkdir"]]


@pytest.mark.parametrize("content", ["{", "[]", '{"syscalls": []}'])
def test_bad_profile_files(tmp_path: Path, content: str) -> None:
    f = tmp_path / "bad.json"
    f.write_text(content)
    with pytest.raises(InvalidArgument, match=str(f)):
        seccomp.load(str(f), [])
    with pytest.raises(InvalidArgument, match="missing"):
        seccomp.load(str(tmp_path / "missing"), [])


def test_profile_rules_are_well_formed() -> None:
    for rule in DEFAULT_PROFILE["syscalls"]:
        assert rule["names"] and all(isinstance(n, str) for n in rule["names"])
        assert rule["action"] in ("SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO")


def test_bpf_compiled_once_per_profile() -> None:
    import base64

    from portside.runtime import seccomp_bpf

    section = seccomp.load("default", DEFAULT_CAPS)
    assert section is not None
    bpf = seccomp_bpf.compile_bpf(section)
    if bpf is None:
        pytest.skip("libseccomp is not installed")
    assert len(bpf) % 8 == 0 and len(bpf) > 8 * 100  # sock_filter entries
    first = seccomp_bpf.annotation(section)
    assert first is not None and base64.b64decode(first) == bpf
    assert seccomp_bpf.annotation(section) is first  # cached
    assert seccomp_bpf.compile_bpf({**section, "flags": ["SECCOMP_FILTER_FLAG_LOG"]}) is None
    assert seccomp_bpf.compile_bpf({**section, "defaultAction": "SCMP_ACT_NOTIFY"}) is None
