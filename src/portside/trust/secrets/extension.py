"""The daemon extension: the secret and config stores of the engine's root, their API
routes, and the engine's `SecretSource` (the secret store)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from portside.engine.secretfiles import close_base
from portside.trust.secrets.api import add_routes
from portside.trust.secrets.keyring import KEY_FILE, Keyring
from portside.trust.secrets.store import CONFIG, SECRET, SecretStore
from portside.trust.secrets.vault import VaultDriver

if TYPE_CHECKING:
    from aiohttp import web

    from portside.engine.containers import Engine


class SecretsExtension:
    """Vault is reached with the daemon's VAULT_ADDR and VAULT_TOKEN (docs/secrets.md)."""

    def install(self, app: web.Application, engine: Engine) -> None:
        keyring = Keyring(engine.root / KEY_FILE)
        backend = engine.state.backend
        secrets = SecretStore(backend, keyring, SECRET, {"vault": VaultDriver.from_env()})
        engine.secrets = secrets
        add_routes(app, engine.events, secrets, SecretStore(backend, keyring, CONFIG))

        async def close(app: web.Application) -> None:
            close_base(engine.root)

        app.on_cleanup.append(close)
