"""The build context: a directory seen through `.dockerignore`, walked and hashed lazily.

Nothing is copied or held in memory: COPY sources are resolved against the directory, their
files streamed through sha256 (in a few threads: hashlib releases the GIL), and each digest
remembered by stat in the build cache, so an unchanged file is never read twice. A context
the daemon unpacked from a client's tar comes with its digests (`known`), taken as it was
written, so it is never read back at all.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from portside.build import dockerignore
from portside.build.cache import BuildCache

HASH_THREADS = max(1, min(4, os.cpu_count() or 1))
_GLOB = frozenset("*?[")


@dataclass(frozen=True)
class Entry:
    """A context path (slash-separated, relative to the context root) and its lstat."""

    rel: str
    path: str  # a plain string: pathlib objects cost more than the walk itself
    st: os.stat_result

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)

    @property
    def is_file(self) -> bool:
        return stat.S_ISREG(self.st.st_mode)


def file_sha256(path: str | Path) -> str:
    with open(path, "rb") as f:
        return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()


class BuildContext:
    def __init__(
        self,
        root: Path,
        cache: BuildCache,
        matcher: dockerignore.Matcher | None = None,
        remember: bool = True,
        known: Mapping[str, str] | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        # sha256 of files by their path relative to the root, vouched for by whoever wrote
        # them (the daemon's context unpacker); nothing else writes in such a context.
        self.known = known or {}
        self._prefix = str(self.root) + "/"
        self.cache = cache
        self.matcher = (
            matcher if matcher is not None else dockerignore.Matcher.for_context(self.root)
        )
        self.remember = remember
        if remember:
            cache.scope(str(self.root))

    def ignored(self, rel: str) -> bool:
        return self.matcher.ignored(rel)

    def resolves_inside(self, rel: str) -> bool:
        """Whether `rel`, with every symlink on the way followed, stays in the context.

        A context can hold symlinks to anywhere (`etc -> /etc`); a source path must never
        reach through one to a file outside the context (Docker scopes them the same way).
        """
        real = os.path.realpath(self.root / rel if rel else self.root)
        return Path(real).is_relative_to(self.root)

    def _parent_inside(self, rel: str) -> bool:
        parent = os.path.dirname(rel)
        return not parent or self.resolves_inside(parent)

    def exists_ignored(self, source: str) -> bool:
        """Whether `source` exists on disk but .dockerignore hides it (for the error hint)."""
        rel = dockerignore.clean(source)
        return bool(rel) and os.path.lexists(self.root / rel) and self.ignored(rel)

    def match(self, source: str) -> list[str]:
        """Context paths a COPY source names (globs expanded), never ignored ones, sorted."""
        rel = dockerignore.clean(source)
        if not rel:
            return [""]
        parts = rel.split("/")
        if not any(c in part for part in parts for c in _GLOB):
            there = os.path.lexists(self.root / rel) and self._parent_inside(rel)
            return [rel] if there and not self.ignored(rel) else []
        found: list[str] = []
        self._glob("", parts, found)
        return sorted(found)

    def _glob(self, prefix: str, parts: list[str], found: list[str]) -> None:
        head, rest = parts[0], parts[1:]
        base = self.root / prefix if prefix else self.root
        if any(c in head for c in _GLOB):
            try:
                regex = dockerignore._compile(head)
            except ValueError:
                return
            try:
                names = sorted(e.name for e in os.scandir(base))
            except (NotADirectoryError, FileNotFoundError):
                return
            candidates = [n for n in names if regex.match(n)]
        else:
            candidates = [head] if os.path.lexists(base / head) else []
        for name in candidates:
            rel = f"{prefix}{name}"
            if self.ignored(rel) and not (rest and self.matcher.may_reinclude_below(rel)):
                continue
            if rest:
                if (self.root / rel).is_dir() and self.resolves_inside(rel):
                    self._glob(rel + "/", rest, found)
            else:
                found.append(rel)

    def tree(self, rel: str) -> Iterator[Entry]:
        """`rel` and, for a directory, everything below it that is not ignored, sorted.

        A symlink named directly as a source is followed (when it stays in the context),
        as Docker does; symlinks found inside directories are kept as links.
        """
        if rel and not self._parent_inside(rel):
            raise FileNotFoundError(f"{rel}: leads outside the build context")
        path = self.root / rel if rel else self.root
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            try:
                target = path.resolve()
            except (RuntimeError, OSError):  # a symlink loop: copied as the link it is
                target = path
            if target != path and target.is_relative_to(self.root) and target.exists():
                path, st = target, os.stat(target)
        yield Entry(rel, str(path), st)
        if stat.S_ISDIR(st.st_mode):
            yield from self._walk(str(path), f"{rel}/" if rel else "")

    def _walk(self, directory: str, prefix: str) -> Iterator[Entry]:
        """Everything below `directory`, depth first and sorted, with an explicit stack
        (a context may nest deeper than Python's recursion limit)."""

        def listing(path: str, at: str) -> Iterator[tuple[os.DirEntry[str], str]]:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: os.fsencode(e.name))
            return iter([(e, at + e.name) for e in entries])

        stack = [listing(directory, prefix)]
        while stack:
            item = next(stack[-1], None)
            if item is None:
                stack.pop()
                continue
            e, rel = item
            st = e.stat(follow_symlinks=False)
            is_dir = stat.S_ISDIR(st.st_mode)
            if self.ignored(rel):
                if is_dir and self.matcher.may_reinclude_below(rel):
                    stack.append(listing(e.path, rel + "/"))
                continue
            yield Entry(rel, e.path, st)
            if is_dir:
                stack.append(listing(e.path, rel + "/"))

    def digests(self, entries: list[Entry]) -> dict[str, str]:
        """sha256 of every regular file in `entries`, from the stat cache when unchanged."""
        out: dict[str, str] = {}
        todo: list[Entry] = []
        for e in entries:
            if not e.is_file:
                continue
            known = None
            if self.known and e.path.startswith(self._prefix):
                known = self.known.get(e.path[len(self._prefix) :])
            if known is None and self.remember:
                known = self.cache.known_hash(e.path, e.st)
            if known:
                out[e.rel] = known
            else:
                todo.append(e)
        if len(todo) == 1 or (todo and HASH_THREADS == 1):
            results = [file_sha256(e.path) for e in todo]
        elif todo:
            with ThreadPoolExecutor(HASH_THREADS) as pool:
                results = list(pool.map(lambda e: file_sha256(e.path), todo))
        else:
            results = []
        for e, digest in zip(todo, results, strict=True):
            out[e.rel] = digest
            if self.remember:
                self.cache.remember_hash(e.path, e.st, digest)
        return out

    def content_digest(self, entries: list[Entry]) -> str:
        """One digest over paths, types, modes, link targets and file contents of `entries`."""
        files = self.digests(entries)
        h = hashlib.sha256()
        for e in entries:
            mode = e.st.st_mode
            extra = files.get(e.rel, "")
            if stat.S_ISLNK(mode):
                extra = os.readlink(e.path)
            h.update(
                f"{e.rel}\0{stat.S_IFMT(mode)}\0{stat.S_IMODE(mode):o}\0{extra}\n".encode(
                    "utf-8", "surrogateescape"
                )
            )
        return "sha256:" + h.hexdigest()
