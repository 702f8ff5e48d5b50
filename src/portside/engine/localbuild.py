"""A build in the engine's process: a Docker build context (a tar, as `POST /build` takes
it) unpacked into a scratch directory under the root, then portside's own builder
(`portside.build.builder`) on the engine's image store, its step lines sent to `log`."""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, cast

from portside.build.builder import BuildOptions as BuilderOptions
from portside.build.builder import build as run_build
from portside.build.output import Progress
from portside.engine.containers import Engine
from portside.engine.interface import BuildOptions, Readable
from portside.errors import InvalidArgument


class _Lines:
    """The builder's progress stream (a text file) as `log` calls, one per write."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log

    def write(self, text: str) -> int:
        if text:
            self.log(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def unpack_context(context: Readable, dest: Path) -> None:
    """A context tar (plain or compressed) into `dest`; members that would land outside
    it, device files and links out of it are refused (tarfile's `data` filter)."""
    try:
        with tarfile.open(fileobj=cast(IO[bytes], context), mode="r|*") as tar:
            tar.extractall(dest, filter="data")
    except tarfile.ReadError as exc:
        raise InvalidArgument(f"the build context is not a tar archive: {exc}") from None
    except tarfile.FilterError as exc:
        raise InvalidArgument(f"unsafe build context: {exc}") from None


def build(engine: Engine, context: Readable, options: BuildOptions,
          log: Callable[[str], None]) -> str:
    """Build from a context tar; returns the image ID."""
    scratch = engine.root / "tmp"
    scratch.mkdir(exist_ok=True, mode=0o700)
    top = Path(tempfile.mkdtemp(dir=scratch, prefix="context-"))
    try:
        unpack_context(context, top)
        dockerfile = Path(options.dockerfile or "Dockerfile")
        if dockerfile.is_absolute() or ".." in dockerfile.parts:
            raise InvalidArgument(f"the Dockerfile {options.dockerfile!r} must be a path "
                                  "inside the build context")
        result = run_build(engine.images, BuilderOptions(
            context=top, dockerfile=top / dockerfile, tags=list(options.tags),
            build_args=dict(options.build_args), target=options.target or None,
            no_cache=options.no_cache, labels=dict(options.labels), pull=options.pull,
            cache_from=list(options.cache_from),
            network=options.network_mode or "default"),
            Progress("quiet" if options.quiet else "plain", _Lines(log)))  # type: ignore[arg-type]
        return result.image.id
    finally:
        shutil.rmtree(top, ignore_errors=True)
