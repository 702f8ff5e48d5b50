"""The OCI distribution server (distribution-spec v1.1) on aiohttp.

One catch-all route under `/v2/` is split by `protocol.parse_route`, so a bad repository
name answers NAME_INVALID instead of a bare 404; access is checked before any handler
runs, so a denied request never changes anything. Handlers live in `blobs.py`,
`manifests.py`; the state they share with this module (`Registry`, `Caller`, grants) in
`serverstate.py`; this module holds the application, auth, listings and `/token`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from portside.registry import auth as auth_mod
from portside.registry import protocol
from portside.registry.errors import RegistryError, from_exception
from portside.registry.serverstate import CALLER, Caller, Registry, granted
from portside.registry.storage import RegistryStorage

if TYPE_CHECKING:
    from portside.registry.proxy import Proxy

log = logging.getLogger("portside.registry")

API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}
Handler = Callable[[web.Request, "Registry", protocol.Route], Awaitable[web.StreamResponse]]

# (route kind, method) -> action needed on the repository ("" = none beyond the handshake)
_NEEDS = {
    ("manifest", "GET"): "pull", ("manifest", "HEAD"): "pull",
    ("manifest", "PUT"): "push", ("manifest", "DELETE"): "delete",
    ("blob", "GET"): "pull", ("blob", "HEAD"): "pull", ("blob", "DELETE"): "delete",
    ("uploads", "POST"): "push", ("uploads", "GET"): "push", ("uploads", "PATCH"): "push",
    ("uploads", "PUT"): "push", ("uploads", "DELETE"): "push",
    ("tags", "GET"): "pull", ("referrers", "GET"): "pull",
}


REGISTRY = web.AppKey("registry", Registry)


def service_name(registry: Registry, request: web.Request) -> str:
    return registry.access.service or request.host


async def identify(registry: Registry, request: web.Request) -> Caller | None:
    """Who is calling: None when credentials were given and are wrong."""
    header = request.headers.get("Authorization", "")
    if not header:
        return Caller(None)
    scheme = header.partition(" ")[0].lower()
    if scheme == "bearer" and registry.issuer is not None:
        claims = registry.issuer.verify(header.partition(" ")[2].strip(), service_name(registry, request))
        return Caller(claims.get("sub") or None, claims) if claims else None
    creds = auth_mod.parse_basic(header)
    if creds is None:
        return None
    import asyncio

    ok = await asyncio.get_running_loop().run_in_executor(
        None, registry.passwords.check, creds[0], creds[1]
    )
    return Caller(creds[0]) if ok else None


def challenge(registry: Registry, request: web.Request, scope: str = "",
              insufficient: bool = False) -> dict[str, str]:
    if registry.issuer is None:
        return {"WWW-Authenticate": 'Basic realm="portside-registry"'}
    realm = f"{request.scheme}://{request.host}/token"
    value = f'Bearer realm="{realm}",service="{service_name(registry, request)}"'
    if scope:
        value += f',scope="{scope}"'
    if insufficient:  # RFC 6750: a token was sent, it does not cover this scope
        value += ',error="insufficient_scope"'
    return {"WWW-Authenticate": value}


def authorize(registry: Registry, request: web.Request, caller: Caller | None,
              route: protocol.Route) -> Caller:
    """Raise UNAUTHORIZED/DENIED unless the caller may take this request's action."""
    if not registry.access.enabled:
        return caller or Caller(None)
    if caller is None:
        raise RegistryError("UNAUTHORIZED", "invalid credentials", headers=challenge(registry, request))
    need = _NEEDS.get((route.kind, request.method), "")
    if not need:  # /v2/ and _catalog: an authenticated caller, or anonymous pull
        if caller.user is None and caller.token is None and not (
            registry.issuer is None and registry.access.anonymous_may_pull_something()
        ):
            raise RegistryError("UNAUTHORIZED", headers=challenge(registry, request))
        return caller
    if need in granted(registry, caller, route.name):
        return caller
    actions = "pull" if need == "pull" else f"pull,{need}"
    scope = f"repository:{route.name}:{actions}"
    if registry.issuer is not None or caller.user is None:
        raise RegistryError("UNAUTHORIZED", f"{need} access to {route.name} needs authorization",
                            {"scope": scope},
                            headers=challenge(registry, request, scope, caller.token is not None))
    raise RegistryError("DENIED", f"{caller.user} may not {need} {route.name}")


def error_response(err: RegistryError, request: web.Request) -> web.Response:
    headers = {**API_VERSION, **err.headers, "Content-Type": "application/json"}
    headers.pop("Content-Length", None)
    body = None if request.method == "HEAD" else err.body()
    return web.Response(status=err.http_status, body=body, headers=headers)


async def dispatch(request: web.Request) -> web.StreamResponse:
    registry: Registry = request.app[REGISTRY]
    registry.stats[f"requests {request.method}"] += 1
    try:
        tail = request.match_info.get("tail", "")
        route = protocol.parse_route(tail)
        if route is None:
            raise RegistryError("UNSUPPORTED", f"no endpoint at {request.path[:200]!r}", status=404)
        handler = _handler(route, request.method)
        if handler is None:
            raise RegistryError("UNSUPPORTED", f"{request.method} not allowed on {route.kind}", status=405)
        caller = authorize(registry, request, await identify(registry, request), route)
        if registry.proxy is not None and _NEEDS.get((route.kind, request.method)) in (
                "push", "delete"):
            raise RegistryError("UNSUPPORTED", "a pull-through cache accepts no pushes or deletes",
                                status=405)
        request[CALLER] = caller
        response = await handler(request, registry, route)
    except web.HTTPException:
        raise
    except Exception as exc:  # every error of a request ends as a spec error body
        err = from_exception(exc)
        if err is None:
            if _client_gone(exc):
                raise
            log.exception("internal error on %s %s", request.method, request.path)
            err = RegistryError("UNSUPPORTED", "internal error", status=500)
        return error_response(err, request)
    response.headers.update(API_VERSION)
    return response


def _client_gone(exc: BaseException) -> bool:
    import asyncio

    from aiohttp import ClientPayloadError
    from aiohttp.http_exceptions import HttpProcessingError

    return isinstance(exc, ConnectionError | asyncio.CancelledError | HttpProcessingError
                      | ClientPayloadError)


_TABLE: dict[tuple[str, str], Handler] = {}


def _handler(route: protocol.Route, method: str) -> Handler | None:
    if not _TABLE:
        from portside.registry import blobs, manifests

        _TABLE.update({
            ("base", "GET"): base, ("base", "HEAD"): base,
            ("catalog", "GET"): catalog, ("tags", "GET"): tags_list,
            ("manifest", "GET"): manifests.get, ("manifest", "HEAD"): manifests.get,
            ("manifest", "PUT"): manifests.put, ("manifest", "DELETE"): manifests.delete,
            ("referrers", "GET"): manifests.referrers,
            ("blob", "GET"): blobs.get, ("blob", "HEAD"): blobs.get,
            ("blob", "DELETE"): blobs.delete,
            ("uploads", "POST"): blobs.start_upload, ("uploads", "GET"): blobs.upload_status,
            ("uploads", "PATCH"): blobs.patch_upload, ("uploads", "PUT"): blobs.put_upload,
            ("uploads", "DELETE"): blobs.cancel_upload,
        })
    if route.kind == "uploads" and bool(route.id) != (method != "POST"):
        return None
    return _TABLE.get((route.kind, method))


async def base(request: web.Request, registry: Registry, route: protocol.Route) -> web.Response:
    return web.json_response({})


async def catalog(request: web.Request, registry: Registry, route: protocol.Route) -> web.Response:
    n, last = protocol.parse_page(request.query.get("n"), request.query.get("last"))
    caller = request[CALLER]
    if registry.access.enabled:  # list only what the caller may pull
        names = [r for r in registry.storage.repositories(None, last)
                 if "pull" in registry.access.allowed(caller.user, r)]
        names = names[:n] if n is not None else names
    else:
        names = registry.storage.repositories(n, last)
    headers = {}
    if n and len(names) == n:
        headers["Link"] = protocol.next_link("/v2/_catalog", n, names[-1])
    return web.json_response({"repositories": names}, headers=headers)


async def tags_list(request: web.Request, registry: Registry, route: protocol.Route) -> web.Response:
    n, last = protocol.parse_page(request.query.get("n"), request.query.get("last"))
    if registry.proxy is not None:
        await registry.proxy.refresh_tags(route.name)
    if not registry.storage.repo_exists(route.name):
        raise RegistryError("NAME_UNKNOWN", f"repository {route.name} not known", {"name": route.name})
    names = registry.storage.tags(route.name, n, last)
    headers = {}
    if n and len(names) == n:
        headers["Link"] = protocol.next_link(f"/v2/{route.name}/tags/list", n, names[-1])
    return web.json_response({"name": route.name, "tags": names}, headers=headers)


async def token(request: web.Request) -> web.Response:
    """The token endpoint (Docker token spec; GET with Basic auth, or the OAuth2 POST form)."""
    registry: Registry = request.app[REGISTRY]
    if registry.issuer is None:
        raise web.HTTPNotFound()
    query: Any = request.query
    user: str | None = None
    if request.method == "POST":
        query = await request.post()
        if query.get("grant_type") == "password":
            user, password = str(query.get("username", "")), str(query.get("password", ""))
            if not registry.passwords.check(user, password):
                return _token_denied(registry, request)
    elif request.headers.get("Authorization"):
        caller = await identify(registry, request)
        if caller is None:
            return _token_denied(registry, request)
        user = caller.user
    service = str(query.get("service") or service_name(registry, request))
    access = []
    for scope in query.getall("scope", []) if hasattr(query, "getall") else []:
        for part in str(scope).split(" "):
            parsed = protocol.parse_scope(part)
            if parsed is None or parsed[0] != "repository":
                continue
            allowed = registry.access.allowed(user, parsed[1]) & parsed[2]
            access.append({"type": "repository", "name": parsed[1], "actions": sorted(allowed)})
    jwt = registry.issuer.issue(user, service, access)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return web.json_response({"token": jwt, "access_token": jwt, "expires_in": registry.issuer.expiry,
                              "issued_at": now})


def _token_denied(registry: Registry, request: web.Request) -> web.Response:
    err = RegistryError("UNAUTHORIZED", "invalid username or password")
    return error_response(err, request)


def make_app(registry: Registry) -> web.Application:
    # Manifests are capped at 4 MiB by the handler; blob bodies are streamed, never buffered.
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app[REGISTRY] = registry
    app.router.add_route("*", "/v2", dispatch)
    app.router.add_route("*", "/v2/{tail:.*}", dispatch)
    app.router.add_route("GET", "/token", token)
    app.router.add_route("POST", "/token", token)

    async def close(app: web.Application) -> None:
        if registry.proxy is not None:
            await registry.proxy.close()

    app.on_cleanup.append(close)
    return app


def open_registry(root: Path, auth_config: Path | None = None, htpasswd: Path | None = None,
                  proxy: Proxy | None = None) -> Registry:
    access = auth_mod.load_config(auth_config, htpasswd)
    registry = Registry(RegistryStorage(root), access, proxy=proxy)
    if proxy is not None:
        proxy.storage = registry.storage
    return registry


async def start(registry: Registry, host: str, port: int,
                ssl_context: Any = None) -> tuple[web.AppRunner, int]:
    """Bind and start serving; returns the runner (for cleanup) and the bound port."""
    return await serve(make_app(registry), host, port, ssl_context)


async def serve(app: web.Application, host: str, port: int,
                ssl_context: Any = None) -> tuple[web.AppRunner, int]:
    """`start` for an app already made (a test adds its middlewares to `make_app`'s)."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context, backlog=1024,
                       reuse_address=True)
    await site.start()
    server = getattr(site, "_server", None)
    bound = server.sockets[0].getsockname()[1] if server and server.sockets else port
    return runner, int(bound)


def tls_context(cert: Path, key: Path) -> Any:
    import ssl

    from portside.errors import InvalidArgument

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise InvalidArgument(f"cannot load TLS certificate {cert} / key {key}: {exc}") from None
    return ctx
