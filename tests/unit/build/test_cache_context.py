"""Cache keys, the stat-keyed hash cache, and the context walker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from portside.build import context as context_mod
from portside.build.cache import BuildCache, step_key
from portside.build.context import BuildContext
from portside.build.dockerignore import Matcher, parse

OLD = 1_600_000_000  # an mtime old enough for the hash cache to trust


def test_step_keys_change_with_every_input() -> None:
    base = step_key("sha256:p", "COPY a /b", content="sha256:1", args={"A": "1"})
    assert base == step_key("sha256:p", "COPY a /b", args={"A": "1"}, content="sha256:1")
    others = {
        step_key("sha256:q", "COPY a /b", content="sha256:1", args={"A": "1"}),
        step_key("sha256:p", "COPY a /c", content="sha256:1", args={"A": "1"}),
        step_key("sha256:p", "COPY a /b", content="sha256:2", args={"A": "1"}),
        step_key("sha256:p", "COPY a /b", content="sha256:1", args={"A": "2"}),
    }
    assert base not in others and len(others) == 4


def test_steps_survive_a_restart(tmp_path: Path) -> None:
    cache = BuildCache(tmp_path)
    cache.store("sha256:k", {"layer": None, "created": 1.5})
    cache.close()
    again = BuildCache(tmp_path)
    assert again.lookup("sha256:k") == {"layer": None, "created": 1.5}
    assert again.lookup("sha256:other") is None
    assert again.prune() == 1
    assert again.lookup("sha256:k") is None
    again.close()


def make_context(tmp_path: Path) -> Path:
    top = tmp_path / "ctx"
    (top / "a" / "b").mkdir(parents=True)
    (top / "a" / "b" / "f.txt").write_text("one")
    (top / "a" / "g.log").write_text("two")
    (top / "keep.txt").write_text("three")
    os.symlink("keep.txt", top / "link")
    for p in [*top.rglob("*"), top]:
        os.utime(p, (OLD, OLD), follow_symlinks=False)
    return top


def test_unchanged_files_are_not_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    top = make_context(tmp_path)
    reads: list[str] = []
    real = context_mod.file_sha256

    def counting(path: str | Path) -> str:
        reads.append(str(path))
        return real(path)

    monkeypatch.setattr(context_mod, "file_sha256", counting)
    cache = BuildCache(tmp_path / "root")
    ctx = BuildContext(top, cache)
    first = ctx.content_digest(list(ctx.tree("")))
    assert len(reads) == 3
    cache.close()

    cache = BuildCache(tmp_path / "root")  # a new process: the hashes come from SQLite
    ctx = BuildContext(top, cache)
    reads.clear()
    assert ctx.content_digest(list(ctx.tree(""))) == first
    assert reads == []
    (top / "a" / "g.log").write_text("changed")
    assert ctx.content_digest(list(ctx.tree(""))) != first
    assert reads == [str(top / "a" / "g.log")]
    cache.close()


def test_digest_covers_names_modes_and_links(tmp_path: Path) -> None:
    top = make_context(tmp_path)
    cache = BuildCache(tmp_path / "root")
    ctx = BuildContext(top, cache)
    before = ctx.content_digest(list(ctx.tree("")))
    (top / "keep.txt").chmod(0o600)
    after_mode = ctx.content_digest(list(ctx.tree("")))
    os.remove(top / "link")
    os.symlink("a", top / "link")
    after_link = ctx.content_digest(list(ctx.tree("")))
    assert len({before, after_mode, after_link}) == 3
    cache.close()


def test_ignored_paths_and_globs(tmp_path: Path) -> None:
    top = make_context(tmp_path)
    cache = BuildCache(tmp_path / "root")
    ctx = BuildContext(top, cache, Matcher(parse("**/*.log\na/b\n!a/b/f.txt")))
    # a/b itself stays out; a COPY creates it as the parent of what it holds
    assert [e.rel for e in ctx.tree("")] == ["", "a", "a/b/f.txt", "keep.txt", "link"]
    assert ctx.match("*.txt") == ["keep.txt"]
    assert ctx.match("a/*/f.txt") == ["a/b/f.txt"]
    assert ctx.match("a/g.log") == []
    assert ctx.exists_ignored("a/g.log") and not ctx.exists_ignored("nope")
    assert ctx.match("../../keep.txt") == ["keep.txt"]  # never outside the context
    top_link = next(ctx.tree("link"))
    assert top_link.is_file  # a symlink named as a source is followed
    cache.close()


def test_sources_never_reach_through_a_symlink_out_of_the_context(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "secret").write_text("host file\n")
    ctx_dir = tmp_path / "ctx"
    (ctx_dir / "inner").mkdir(parents=True)
    (ctx_dir / "inner" / "ok.txt").write_text("in the context\n")
    os.symlink(outside, ctx_dir / "out")  # absolute: anywhere on the host
    os.symlink("inner", ctx_dir / "alias")  # relative, staying inside
    cache = BuildCache(tmp_path / "cache")
    ctx = BuildContext(ctx_dir, cache, remember=False)
    assert ctx.match("out/secret") == []
    assert ctx.match("out/*") == []
    assert ctx.match("*/secret") == []
    assert ctx.match("out") == ["out"]  # the link itself is copied as a link
    assert [e.rel for e in ctx.tree("out")] == ["out"]  # and not followed out
    with pytest.raises(FileNotFoundError):
        list(ctx.tree("out/secret"))
    assert ctx.match("alias/ok.txt") == ["alias/ok.txt"]
    assert ctx.resolves_inside("alias") and not ctx.resolves_inside("out")
    cache.close()
