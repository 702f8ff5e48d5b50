"""The Vault driver (hvac): a secret that is only a reference, read when a container starts.

The reference is `Spec.Driver.Options.path`, `MOUNT/PATH#FIELD` (for KV v2 the API path,
`secret/data/shop#api_key`; KV v1 `kv/shop#api_key` works too). The daemon authenticates
with its own environment's `VAULT_ADDR`, `VAULT_TOKEN` and optional `VAULT_NAMESPACE`,
read once when it starts: the token is never stored, never sent to a client and never in
a message. Every failure is one line naming the secret and Vault's address.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from portside.errors import InvalidArgument, PortsideError


class VaultUnavailable(PortsideError):
    """Vault could not give a secret's value: unset, unreachable, sealed, refused, absent."""

    http_status = 500

    def __init__(self, name: str, addr: str, why: str) -> None:
        where = f"vault at {addr}" if addr else "vault"
        super().__init__(f"secret {name!r}: {where}: {why}")
        self.name = name


def split_reference(name: str, options: Mapping[str, str]) -> tuple[str, str]:
    """`path#field` -> (path, field), refused with one line when malformed."""
    ref = options.get("path", "")
    path, sep, field = ref.partition("#")
    path = path.strip("/")
    if not sep or not path or not field or path.startswith("v1/"):
        raise InvalidArgument(f"secret {name!r}: vault path {ref!r} must be MOUNT/PATH#FIELD "
                              "(e.g. secret/data/shop#api_key)")
    return path, field


class VaultDriver:
    def __init__(self, addr: str, token: str, namespace: str = "") -> None:
        self.addr = addr.rstrip("/")
        self._token = token
        self.namespace = namespace

    def __repr__(self) -> str:  # never the token
        return f"VaultDriver({self.addr!r})"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> VaultDriver:
        env = os.environ if env is None else env
        return cls(env.get("VAULT_ADDR", ""), env.get("VAULT_TOKEN", ""),
                   env.get("VAULT_NAMESPACE", ""))

    def check(self, name: str, options: Mapping[str, str]) -> None:
        split_reference(name, options)

    def read(self, name: str, options: Mapping[str, str]) -> bytes:
        path, field = split_reference(name, options)
        if not self.addr:
            raise VaultUnavailable(name, "", "the daemon has no VAULT_ADDR in its environment")
        if not self._token:
            raise VaultUnavailable(name, self.addr,
                                   "the daemon has no VAULT_TOKEN in its environment")
        data = self._get(name, path)
        if isinstance(data.get("data"), dict) and isinstance(data.get("metadata"), dict):
            data = data["data"]  # KV v2 wraps the fields with their metadata
        if field not in data:
            raise VaultUnavailable(name, self.addr, f"{path} has no field {field!r}")
        value = data[field]
        return value.encode() if isinstance(value, str) else json.dumps(value).encode()

    def _get(self, name: str, path: str) -> dict[str, Any]:
        import hvac
        import requests
        from hvac import exceptions as ex

        client = hvac.Client(url=self.addr, token=self._token,
                             namespace=self.namespace or None, timeout=10)
        try:
            resp = client.read(path)
        except ex.VaultDown:
            raise VaultUnavailable(name, self.addr, "vault is sealed") from None
        except (ex.Forbidden, ex.Unauthorized):
            raise VaultUnavailable(name, self.addr, f"permission denied reading {path} "
                                   "(the daemon's VAULT_TOKEN)") from None
        except ex.InvalidPath:
            resp = None
        except ex.VaultError as exc:
            raise VaultUnavailable(name, self.addr, f"error reading {path}: "
                                   f"{type(exc).__name__}") from None
        except requests.RequestException as exc:
            reason = "timed out" if isinstance(exc, requests.Timeout) else "cannot be reached"
            raise VaultUnavailable(name, self.addr, reason) from None
        if not isinstance(resp, dict) or not isinstance(resp.get("data"), dict):
            raise VaultUnavailable(name, self.addr, f"nothing at {path}")
        data: dict[str, Any] = resp["data"]
        return data
