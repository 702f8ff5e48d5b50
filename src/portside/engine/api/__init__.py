"""The daemon's HTTP API: the Docker Engine API over a unix socket (aiohttp).

Every route answers both unversioned (`/containers/json`) and versioned
(`/v1.43/containers/json`) paths. Errors are Docker's `{"message": ...}` bodies with the
status the PortsideError carries (404 no such container, 409 conflict, 400 bad input), and
beside `message` the error's class and facts (`errors.to_wire`), so a portside client
raises the very class the engine raised.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from portside.errors import PortsideError, to_wire

log = logging.getLogger("portside.api")


def error_response(message: str | dict[str, object], status: int) -> web.Response:
    """Docker's error body (a message, or `to_wire`'s whole document). The content type is
    exactly `application/json` (no charset): the docker client reads the message out of
    the JSON only then."""
    doc = {"message": message} if isinstance(message, str) else message
    return web.Response(body=json.dumps(doc).encode(), status=status,
                        content_type="application/json")


@web.middleware
async def errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException as exc:
        if exc.status >= 400:
            return error_response(exc.reason or str(exc), exc.status)
        raise
    except PortsideError as exc:
        return error_response(to_wire(exc), exc.http_status)
    except (ValueError, json.JSONDecodeError) as exc:
        return error_response(f"invalid parameter: {exc}", 400)
    except ConnectionError as exc:
        if request.transport is None or request.transport.is_closing():
            # A client that stops reading a log, event or stats stream, or hangs up in the
            # middle of an upload: a normal event, not an error of ours.
            log.debug("%s %s: the client went away (%s)", request.method, request.path, exc)
            return web.Response(status=499)  # nobody reads it; aiohttp drops it quietly
        raise
    except Exception as exc:
        log.exception("%s %s failed", request.method, request.path)
        return error_response(f"internal error: {exc}", 500)


def make_app(engine: Any) -> web.Application:
    from portside.engine.api import (
        archive,
        build,
        containers,
        execs,
        images,
        info,
        manage,
        system,
    )

    app = web.Application(middlewares=[errors], client_max_size=64 * 1024 * 1024)
    app["engine"] = engine
    for method, path, handler in [*system.routes(), *containers.routes(), *execs.routes(),
                                  *images.routes(), *archive.routes(), *manage.routes(),
                                  *info.routes()]:
        app.router.add_route(method, path, handler)
        app.router.add_route(method, r"/v{version:\d+\.\d+}" + path, handler)
    _add_network_routes(app, engine)
    build.add_routes(app, engine)
    return app


def _add_network_routes(app: web.Application, engine: Any) -> None:
    """`/networks` from the network package, with the engine's view of containers."""
    from portside.engine.operations import container_ref
    from portside.network.api import add_routes

    add_routes(app, engine.networks.manager, lambda ref: container_ref(engine, ref))
