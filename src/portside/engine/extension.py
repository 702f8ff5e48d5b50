"""Parts a daemon serves beside the engine (services, secrets, metrics...).

They sit above the engine in the layering, so the engine never imports them: the command
line composes the daemon from the engine and a list of extensions (`portside.cli.daemon`),
and each extension installs its routes and its start-up and clean-up hooks on the app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from aiohttp import web

    from portside.engine.containers import Engine


class DaemonExtension(Protocol):
    def install(self, app: web.Application, engine: Engine) -> None:
        """Add routes and hooks (`app.on_startup`, `app.on_cleanup`) before the socket
        opens. The engine's state backend is `engine.state.backend`."""
        ...
