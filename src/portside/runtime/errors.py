"""Errors of the low-level runtime, each one line with the container and the cause."""

from __future__ import annotations

from portside.errors import Conflict, InvalidArgument, NotFound, PortsideError


class ContainerUnknown(NotFound):
    def __init__(self, cid: str) -> None:
        super().__init__(f"no such container: {cid}")
        self.cid = cid


class ContainerExists(Conflict):
    def __init__(self, cid: str) -> None:
        super().__init__(f"container {cid} already exists in the runtime")
        self.cid = cid


class InvalidState(Conflict):
    """E.g. start of a running container, pause of a stopped one."""

    def __init__(self, cid: str, action: str, status: str) -> None:
        super().__init__(f"cannot {action} container {cid[:12]}: it is {status}")


class RuntimeFailed(PortsideError):
    """crun/runc/conmon reported an error; the message is the runtime's own, on one line."""

    http_status = 500

    def __init__(self, cid: str, action: str, message: str) -> None:
        msg = " ".join(message.split()) or "unknown error"
        super().__init__(f"{action} container {cid[:12]}: {msg}")
        self.cid = cid
        self.runtime_message = msg


class CommandNotFound(RuntimeFailed):
    """The container's command does not exist in its root: exit status 127, like Docker."""

    exit_code = 127
    http_status = 400


class CommandNotExecutable(RuntimeFailed):
    """The command exists but cannot be executed: exit status 126, like Docker."""

    exit_code = 126
    http_status = 400


class UserUnknown(InvalidArgument):
    def __init__(self, what: str, name: str, where: str) -> None:
        super().__init__(f"unable to find {what} {name}: no matching entries in {where}")


class MountFailed(PortsideError):
    http_status = 500

    def __init__(self, target: str, reason: str) -> None:
        super().__init__(f"mount {target}: {reason}")


class UnknownRuntime(InvalidArgument):
    def __init__(self, name: str, why: str = "") -> None:
        super().__init__(f"unknown or invalid runtime name: {name}{': ' + why if why else ''}")
