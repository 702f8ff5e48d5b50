"""--user resolution against the container's /etc/passwd and /etc/group."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portside.runtime import UserUnknown
from portside.runtime.rootpath import resolve_in_root
from portside.runtime.users import resolve_user


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\n# comment\n\nweb:x:33:33:www:/var/www:/bin/false\n"
        "broken line\n")
    (tmp_path / "etc" / "group").write_text("root:x:0:\nweb:x:33:\nadm:x:4:web,other\nextra:x:99:\n")
    return tmp_path


def test_empty_user_is_root(rootfs: Path) -> None:
    u = resolve_user(rootfs, "")
    assert (u.uid, u.gid, u.home) == (0, 0, "/root")


def test_name_with_supplementary_groups(rootfs: Path) -> None:
    u = resolve_user(rootfs, "web")
    assert (u.uid, u.gid, u.additional_gids, u.home) == (33, 33, [4], "/var/www")


def test_numeric_uid_unknown_is_fine(rootfs: Path) -> None:
    u = resolve_user(rootfs, "1234")
    assert (u.uid, u.gid, u.additional_gids) == (1234, 0, [])
    u = resolve_user(rootfs, "33")
    assert (u.uid, u.gid) == (33, 33)


def test_group_by_name_and_number(rootfs: Path) -> None:
    assert resolve_user(rootfs, "web:adm").gid == 4
    assert resolve_user(rootfs, "web:4242").gid == 4242
    assert resolve_user(rootfs, "web:adm").additional_gids == []


def test_group_add(rootfs: Path) -> None:
    assert resolve_user(rootfs, "web", ["extra", "7"]).additional_gids == [4, 99, 7]


def test_unknown_names(rootfs: Path) -> None:
    with pytest.raises(UserUnknown, match="user ghost"):
        resolve_user(rootfs, "ghost")
    with pytest.raises(UserUnknown, match="group nope"):
        resolve_user(rootfs, "web:nope")


def test_no_passwd_file(tmp_path: Path) -> None:
    assert resolve_user(tmp_path, "0:0").uid == 0
    with pytest.raises(UserUnknown):
        resolve_user(tmp_path, "root")


def test_symlinked_passwd_stays_inside_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    os.symlink("/etc/shadow", root / "etc" / "passwd")
    os.symlink("../../../../../../../etc/hosts", root / "etc" / "group")
    assert resolve_in_root(root, "/etc/passwd") == root / "etc" / "shadow"
    assert resolve_in_root(root, "/etc/group") == root / "etc" / "hosts"
    with pytest.raises(UserUnknown):
        resolve_user(root, "root")


def test_symlink_loop(tmp_path: Path) -> None:
    os.symlink("b", tmp_path / "a")
    os.symlink("a", tmp_path / "b")
    with pytest.raises(OSError):
        resolve_in_root(tmp_path, "/a")


_field = st.text(alphabet=st.characters(blacklist_characters=":\n\r", codec="utf-8"), max_size=8)


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(st.lists(_field, min_size=0, max_size=9).map(":".join), max_size=8),
       user=st.text(max_size=12))
def test_arbitrary_passwd_never_crashes(tmp_path_factory: pytest.TempPathFactory,
                                        lines: list[str], user: str) -> None:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("\n".join(lines))
    (root / "etc" / "group").write_text("\n".join(lines))
    try:
        u = resolve_user(root, user)
    except UserUnknown:
        return
    assert u.uid >= 0 and u.gid >= 0


@given(path=st.text(alphabet="ab./", max_size=30))
def test_resolve_in_root_never_escapes(path: str) -> None:
    root = Path("/nonexistent-root")
    out = resolve_in_root(root, path)
    assert out == root or root in out.parents
