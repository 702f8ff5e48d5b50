"""Engine errors that clients raise too: light (only `portside.errors`), so the CLI's `run`
path can name them without importing the engine."""

from __future__ import annotations

from portside.errors import PortsideError


class StartFailed(PortsideError):
    """The runtime could not start the process. The message has Docker's wording (the docker
    client maps it to 127/126 by text); `exit_code` is set by the engine from the cause:
    127 command not found, 126 not executable, 125 otherwise."""

    http_status = 400
    exit_code = 125
