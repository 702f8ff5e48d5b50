"""The low-level container runtime: OCI bundles run by crun/runc under one conmon each.

`Runtime(root)` keeps one directory per container id under `root` (bundle, overlay
upper/work, conmon pid and exit files, log). Containers outlive the Python process that
created them (conmon is their parent), and a new `Runtime(root)` adopts them.
"""

from portside.runtime.errors import (
    CommandNotExecutable,
    CommandNotFound,
    ContainerExists,
    ContainerUnknown,
    InvalidState,
    MountFailed,
    RuntimeFailed,
    UnknownRuntime,
    UserUnknown,
)
from portside.runtime.execproc import ExecProcess
from portside.runtime.logs import LogEntry, read_logs
from portside.runtime.runtime import Runtime
from portside.runtime.types import ContainerSpec, ContainerState, Device, Mount, Resources

__all__ = [
    "CommandNotExecutable",
    "CommandNotFound",
    "ContainerExists",
    "ContainerSpec",
    "ContainerState",
    "ContainerUnknown",
    "Device",
    "ExecProcess",
    "InvalidState",
    "LogEntry",
    "Mount",
    "MountFailed",
    "Resources",
    "Runtime",
    "RuntimeFailed",
    "UnknownRuntime",
    "UserUnknown",
    "read_logs",
]
