"""`portside cp`: copy files between a container and the host, as `docker cp` does.

`CONTAINER:SRC DEST` fetches a tar of SRC (`GET /containers/{id}/archive`) and unpacks it
at DEST with the store's hardened unpacker (nothing from the container is written through
a symlink or outside DEST); `SRC CONTAINER:DEST` sends a tar of SRC (`PUT`). `-` is a tar
on stdout or stdin. Docker's naming rules: into an existing directory the copy keeps its
name; otherwise it takes DEST's name; `SRC/.` copies a directory's contents.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from typing import IO

import click

from portside.cli.engine import engine
from portside.cli.output import human_size
from portside.engine.interface import PathStat
from portside.errors import InvalidArgument, NotFound

GO_DIR = 1 << 31
GO_SYMLINK = 1 << 27


# -- the engine calls --------------------------------------------------------------------------

def _stat(container: str, path: str) -> PathStat | None:
    """The container path's stat, or None when it does not exist."""
    try:
        return engine().containers.stat_path(container, path)
    except NotFound:
        return None


def _get(container: str, path: str) -> tuple[PathStat, IO[bytes]]:
    """The tar of `path`, spooled (in memory up to 16 MB, then in a temporary file)."""
    spool = tempfile.SpooledTemporaryFile(max_size=16 << 20)  # noqa: SIM115 - returned
    try:
        st = engine().containers.get_archive(container, path, spool)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return st, spool


def _put(container: str, path: str, source: IO[bytes], copy_owner: bool) -> None:
    engine().containers.put_archive(container, path, source, no_overwrite_dir_non_dir=True,
                                    copy_uid_gid=copy_owner)


# -- the command ------------------------------------------------------------------------------

def _split(arg: str) -> tuple[str | None, str]:
    """`name:path` -> (name, path); a local path (absolute, ./, or without a colon) -> None."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return None, arg
    name, _, path = arg.partition(":")
    return name, path


def _contents_only(path: str) -> bool:
    return path.endswith("/.") or path == "."


def copy_from(container: str, src: str, dst: str, follow: bool) -> int:
    """Container -> host (or stdout); returns the bytes of the tar received."""
    from portside.engine.archive import extract_at

    st, tar = _get(container, src)
    if follow and st.mode & GO_SYMLINK and st.link_target:
        tar.close()
        st, tar = _get(container, st.link_target)
    with tar:
        size = tar.seek(0, os.SEEK_END)
        tar.seek(0)
        if dst == "-":
            out = sys.stdout.buffer
            while chunk := tar.read(1 << 20):
                out.write(chunk)
            out.flush()
            return size
        src_is_dir = bool(st.mode & GO_DIR)
        name = st.name or os.path.basename(src.rstrip("/"))
        rebase: tuple[str, str] | None = None
        if os.path.isdir(dst):
            into = dst
        else:
            if os.path.lexists(dst) and src_is_dir:
                raise InvalidArgument(f"cannot copy directory {src} to the file {dst}")
            if dst.endswith("/") and not src_is_dir:
                raise InvalidArgument(f"destination directory {dst} does not exist")
            into = os.path.dirname(os.path.abspath(dst))
            if not os.path.isdir(into):
                raise InvalidArgument(f"destination directory {into} does not exist")
            if _contents_only(src):
                os.mkdir(dst)
                into = dst
            else:
                rebase = (name, os.path.basename(os.path.abspath(dst)))
        fd = os.open(into, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            extract_at(fd, tar, into, rebase=rebase)
        finally:
            os.close(fd)
    return size


def _local_tar(src: str, arcname: str, follow: bool) -> IO[bytes]:
    """A tar of the local `src` named `arcname` (`.`: its contents), in a spooled file."""
    from portside.engine.archive import tar_local

    spool = tempfile.SpooledTemporaryFile(max_size=16 << 20)  # noqa: SIM115 - returned
    path = os.path.realpath(src) if follow else os.path.abspath(src)

    def write(chunk: bytes) -> None:
        spool.write(chunk)

    tar_local(path, arcname, write)
    spool.seek(0)
    return spool


def copy_to(src: str, container: str, dst: str, follow: bool, copy_owner: bool) -> int:
    """Host (or stdin) -> container; returns the bytes of the tar sent."""
    if src == "-":
        _put(container, dst, sys.stdin.buffer, copy_owner)
        return 0
    try:
        st = os.stat(src) if follow else os.lstat(src)
    except FileNotFoundError:
        raise InvalidArgument(f"could not find the file {src} on the host") from None
    src_is_dir = stat.S_ISDIR(st.st_mode)
    target = _stat(container, dst)
    if target is not None and target.mode & GO_SYMLINK and target.link_target:
        dst = target.link_target
        target = _stat(container, dst)
    if target is not None and target.mode & GO_DIR:
        into = dst
        arcname = "." if _contents_only(src) else os.path.basename(os.path.abspath(src))
    else:
        if target is not None and src_is_dir:
            raise InvalidArgument(f"cannot copy directory {src} to the file {container}:{dst}")
        if target is None and dst.endswith("/"):
            raise NotFound(f"Could not find the file {dst} in container {container}")
        into = os.path.dirname(dst.rstrip("/")) or "/"
        arcname = os.path.basename(dst.rstrip("/"))
    source = _local_tar(src, arcname, follow)
    size = source.seek(0, os.SEEK_END)
    source.seek(0)
    try:
        _put(container, into, source, copy_owner)
    finally:
        source.close()
    return size


@click.command("cp", context_settings={"ignore_unknown_options": False})
@click.option("-a", "--archive", "copy_owner", is_flag=True,
              help="Archive mode (copy all uid/gid information).")
@click.option("-L", "--follow-link", "follow", is_flag=True,
              help="Always follow symbol link in SRC_PATH.")
@click.option("-q", "--quiet", is_flag=True, help="Suppress progress output.")
@click.argument("source")
@click.argument("destination")
def cp(copy_owner: bool, follow: bool, quiet: bool, source: str, destination: str) -> None:
    """Copy files/folders between a container and the local filesystem.

    \b
    portside cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-
    portside cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH
    """
    src_ctr, src = _split(source)
    dst_ctr, dst = _split(destination)
    if (src_ctr is None) == (dst_ctr is None):
        raise InvalidArgument("copying between containers is not supported" if src_ctr
                              else "must specify at least one container source")
    if src_ctr is not None:
        if not src:
            raise InvalidArgument("source path cannot be empty")
        size = copy_from(src_ctr, src, dst, follow)
        where = dst
    else:
        assert dst_ctr is not None
        if not dst:
            raise InvalidArgument("destination path cannot be empty")
        size = copy_to(src, dst_ctr, dst, follow, copy_owner)
        where = f"{dst_ctr}:{dst}"
    if not quiet and dst != "-" and src != "-":
        click.echo(f"Successfully copied {human_size(size)} to {where}", err=True)
