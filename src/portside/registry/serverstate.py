"""What the registry server's parts share: its state, who is calling, and what they may do.

`Registry` holds the storage, access rules, token issuer, optional pull-through upstream
and counters; `Caller` is who a request comes from (the server's middleware identifies it
and sets it on the request as `CALLER` before any handler runs); `granted` is what a
caller may do to a repository. It sits below `server` and the handlers (`blobs`,
`manifests`) that both use it, so neither imports the other back.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from portside.registry import auth as auth_mod
from portside.registry.storage import RegistryStorage

if TYPE_CHECKING:
    from portside.registry.proxy import Proxy


class PushPolicy(Protocol):
    async def refusal(self, host: str, repo: str, tag: str, digest: str) -> str | None:
        """Why the manifest `digest` may not be tagged `tag` in `repo` of this registry
        (known to its clients as `host`); None to accept."""
        ...


@dataclass
class Registry:
    """The server's state: storage, access rules, token issuer, optional upstream, counters."""

    storage: RegistryStorage
    access: auth_mod.AccessConfig = field(default_factory=auth_mod.AccessConfig)
    issuer: auth_mod.TokenIssuer | None = None
    proxy: Proxy | None = None
    stats: Counter[str] = field(default_factory=Counter)
    push_policy: PushPolicy | None = None  # `registry serve --policy` (the trust layer's)

    def __post_init__(self) -> None:
        self.passwords = auth_mod.PasswordChecker(self.access.htpasswd)
        if self.access.token and self.issuer is None:
            self.issuer = auth_mod.TokenIssuer(
                self.storage.root / "token-key.pem", self.access.expiry
            )


@dataclass
class Caller:
    user: str | None  # None: anonymous
    token: dict[str, Any] | None = None  # verified token claims in the Bearer flow


CALLER = web.RequestKey("caller", Caller)


def granted(registry: Registry, caller: Caller, repo: str) -> frozenset[str]:
    if not registry.access.enabled:
        return auth_mod.ACTIONS
    if registry.issuer is not None and caller.token is None:
        return frozenset()  # the token flow: every grant comes through a token
    if caller.token is not None:
        return auth_mod.token_grants(caller.token, repo)
    return registry.access.allowed(caller.user, repo)
