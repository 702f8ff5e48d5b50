"""Errors of a build, each naming the Dockerfile and line it comes from."""

from __future__ import annotations

from portside.errors import InvalidArgument, NotFound, PortsideError


class DockerfileError(InvalidArgument):
    """The Dockerfile is malformed: `path:line: what is wrong`."""

    def __init__(self, path: str, line: int, message: str) -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line
        self.reason = message


class BuildError(PortsideError):
    """A step failed while building (source missing, command failed...).

    `status` is the exit code of a RUN command that failed (None for other failures): the
    Docker Engine API's build stream reports it as the error's code, and `docker build`
    exits with it."""

    def __init__(self, path: str, line: int, message: str, status: int | None = None) -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line
        self.status = status


class SourceNotFound(NotFound):
    """A COPY/ADD source matched nothing in the context (or the stage/image it names)."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
