"""The build context as the client sends it: a tar of the context directory, streamed.

As the docker client does, what `.dockerignore` (or `<Dockerfile>.dockerignore`) excludes
stays on the client, except the Dockerfile and the ignore file themselves. An ignored path
travels as an empty entry (a file without content, a directory without children), so the
builder can still say "excluded by .dockerignore" for a COPY of it; its content never
leaves. A Dockerfile outside the context, or from standard input, is added under a name of
its own (`.dockerfile.<random>`), with its specific ignore file beside it when it has one.

The secrets of a build travel in the same upload, as parts before the context
(`multipart/form-data`, see `BuildUpload`): the daemon holds them in memory only.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets as random
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from portside.build.dockerignore import Matcher
from portside.engine.interface import Readable
from portside.errors import InvalidArgument

DOCKERFILE_NAMES = ("Dockerfile", "Containerfile")


@dataclass(frozen=True)
class ContextPlan:
    context: Path
    dockerfile: str  # the Dockerfile's name inside the sent context
    extra: dict[str, bytes]  # files added to the context (a Dockerfile from outside it)
    matcher: Matcher


def plan(context: Path, dockerfile: str | None, dockerfile_text: str | None) -> ContextPlan:
    """What to send: the Dockerfile found (or added) and the ignore rules that apply."""
    if not context.is_dir():
        raise InvalidArgument(f"build context {str(context)!r} is not a directory")
    top = context.resolve()
    extra: dict[str, bytes] = {}
    if dockerfile_text is not None:
        name = f".dockerfile.{random.token_hex(10)}"
        extra[name] = dockerfile_text.encode("utf-8", "surrogateescape")
        return ContextPlan(context, name, extra, Matcher.for_context(context))
    if dockerfile is None:
        for candidate in DOCKERFILE_NAMES:
            if (context / candidate).is_file():
                return ContextPlan(context, candidate, extra, _rules(context, context / candidate))
        raise InvalidArgument(f"no Dockerfile or Containerfile in {context} (use -f to name one)")
    given = Path(dockerfile)
    path = given if given.is_absolute() or given.exists() else context / given
    if not path.is_file():
        raise InvalidArgument(f"Dockerfile {dockerfile!r} not found")
    real = path.resolve()
    if real.is_relative_to(top):
        return ContextPlan(context, real.relative_to(top).as_posix(), extra, _rules(context, path))
    name = f".dockerfile.{random.token_hex(10)}"
    try:
        extra[name] = path.read_bytes()
        specific = path.parent / (path.name + ".dockerignore")
        if specific.is_file():
            extra[name + ".dockerignore"] = specific.read_bytes()
    except OSError as exc:
        raise InvalidArgument(f"cannot read {dockerfile}: {exc.strerror}") from None
    return ContextPlan(context, name, extra, _rules(context, path))


def _rules(context: Path, dockerfile: Path) -> Matcher:
    specific = dockerfile.parent / (dockerfile.name + ".dockerignore")
    return Matcher.for_context(context, specific if specific.is_file() else None)


def _entries(p: ContextPlan) -> Iterator[tuple[str, str, bool]]:
    """(path on disk, name in the tar, whether to send it empty), parents before children."""
    keep = {p.dockerfile, ".dockerignore", p.dockerfile + ".dockerignore"}
    root = os.fspath(p.context)

    def listing(directory: str, prefix: str) -> Iterator[tuple[os.DirEntry[str], str]]:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            raise InvalidArgument(f"cannot read {directory}: {exc.strerror}") from None
        return ((e, prefix + e.name) for e in entries)

    # A stack of listings, not recursion: a context may be thousands of directories deep.
    stack = [listing(root, "")]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
            continue
        entry, rel = item
        is_dir = entry.is_dir(follow_symlinks=False)
        if (rel not in keep and p.matcher.ignored(rel)
                and not (is_dir and p.matcher.may_reinclude_below(rel))):
            yield entry.path, rel, True
            continue
        yield entry.path, rel, False
        if is_dir:
            stack.append(listing(entry.path, rel + "/"))


def _write(p: ContextPlan, out: IO[bytes]) -> None:
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for path, name, empty in _entries(p):
            info = tar.gettarinfo(path, name)
            info.uname = info.gname = ""
            if empty:
                info.size = 0
                tar.addfile(info)
            elif info.isreg():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
        for name, data in p.extra.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, _Bytes(data))


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self.data) if n < 0 else self.at + n
        block, self.at = self.data[self.at:end], min(end, len(self.data))
        return block


class ContextStream:
    """The context tar, made in a thread as it is read (no copy on disk); an error while
    making it (an unreadable file) is raised by `read`."""

    def __init__(self, p: ContextPlan) -> None:
        rfd, wfd = os.pipe()
        with contextlib.suppress(OSError):  # fewer switches between the two threads
            fcntl.fcntl(wfd, fcntl.F_SETPIPE_SZ, 1 << 20)
        self._r = os.fdopen(rfd, "rb")
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._make, args=(p, os.fdopen(wfd, "wb")),
                                        name="portside-context", daemon=True)
        self._thread.start()

    def _make(self, p: ContextPlan, out: IO[bytes]) -> None:
        try:
            with out:
                _write(p, out)
        except BrokenPipeError:
            pass  # the reader stopped (the daemon refused the build)
        except BaseException as exc:
            self._error = exc

    def read(self, n: int = -1, /) -> bytes:
        block = self._r.read(n)
        if not block:
            self._thread.join()
            if self._error is not None:
                raise self._error
        return block

    def close(self) -> None:
        self._r.close()
        self._thread.join()


class BuildUpload:
    """The body of a build with secrets: `multipart/form-data`, one part per secret (named
    `secret`, its id as the part's filename), then the context (named `context`)."""

    def __init__(self, secrets: dict[str, bytes], context: Readable) -> None:
        self.boundary = "portside-" + random.token_hex(16)
        head = b""
        for sid, value in secrets.items():
            head += self._part("secret", sid) + value + b"\r\n"
        self._head = head + self._part("context", "context.tar")
        self._context = context
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        self._done = False

    def _part(self, name: str, filename: str) -> bytes:
        quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
        return (f"--{self.boundary}\r\nContent-Disposition: form-data; name=\"{name}\";"
                f" filename=\"{quoted}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                ).encode()

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def read(self, n: int = -1, /) -> bytes:
        if self._head:
            head, self._head = self._head, b""
            return head
        if self._done:
            return b""
        block = self._context.read(n)
        if block:
            return block
        self._done = True
        return self._tail
