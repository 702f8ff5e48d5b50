"""Who may do what: htpasswd (bcrypt) users, per-repository rules, and signed Bearer tokens.

The access config (`--auth-config`, YAML) looks like::

    htpasswd: users.htpasswd        # or --htpasswd
    anonymous_pull: false           # let anyone pull every repository
    token:                          # present: use the Docker token flow (Bearer)
      service: portside-registry    # default: the registry's host:port
      expiry: 300                   # seconds
    access:                         # absent: every authenticated user may do everything
      - repository: "team/*"        # a glob; '*' also matches '/'
        users: [alice]              # '*' is any authenticated user, 'anonymous' nobody
        actions: [pull, push, delete]

Tokens are JWTs signed with Ed25519 (`alg: EdDSA`) by a key kept in `<root>/token-key.pem`,
carrying the Docker token spec's `access` claim; the server that issues them verifies them.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portside.errors import InvalidArgument

ACTIONS = frozenset({"pull", "push", "delete"})
ANONYMOUS = "anonymous"


class AuthConfigError(InvalidArgument):
    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class Rule:
    repository: str
    users: frozenset[str]
    actions: frozenset[str]

    def grants(self, user: str | None, repo: str) -> frozenset[str]:
        who = user if user is not None else ANONYMOUS
        if not fnmatch.fnmatchcase(repo, self.repository):
            return frozenset()
        if who in self.users or (user is not None and "*" in self.users):
            return self.actions
        return frozenset()


@dataclass
class AccessConfig:
    htpasswd: dict[str, bytes] = field(default_factory=dict)
    rules: list[Rule] | None = None
    anonymous_pull: bool = False
    token: bool = False
    service: str = ""
    expiry: int = 300

    @property
    def enabled(self) -> bool:
        return bool(self.htpasswd) or self.rules is not None or self.token

    def allowed(self, user: str | None, repo: str) -> frozenset[str]:
        """The actions `user` (None: anonymous) may take on `repo`."""
        granted: set[str] = set()
        if not self.enabled:
            return ACTIONS
        if user is None and self.anonymous_pull:
            granted.add("pull")
        if self.rules is None:
            if user is not None:
                granted |= ACTIONS
            return frozenset(granted)
        for rule in self.rules:
            granted |= rule.grants(user, repo)
        return frozenset(granted)

    def anonymous_may_pull_something(self) -> bool:
        return self.anonymous_pull or any(
            ANONYMOUS in r.users and "pull" in r.actions for r in self.rules or []
        )


def load_htpasswd(path: Path) -> dict[str, bytes]:
    """`user:$2y$...` lines (bcrypt only, as distribution accepts)."""
    users: dict[str, bytes] = {}
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise AuthConfigError(str(path), f"cannot read htpasswd file ({exc.strerror})") from None
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not hashed.startswith(("$2y$", "$2b$", "$2a$")):
            raise AuthConfigError(f"{path}:{number}", "not a bcrypt htpasswd entry (use htpasswd -B)")
        users[user] = hashed.encode()
    return users


def load_config(path: Path | None, htpasswd: Path | None) -> AccessConfig:
    cfg = AccessConfig()
    data: dict[str, Any] = {}
    if path is not None:
        import yaml

        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except OSError as exc:
            raise AuthConfigError(str(path), f"cannot read ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise AuthConfigError(str(path), f"not valid YAML ({exc})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise AuthConfigError(str(path), "must be a mapping")
        data = loaded or {}
    where = str(path)
    if htpasswd is None and data.get("htpasswd"):
        htpasswd = Path(path).parent / str(data["htpasswd"]) if path else None
    if htpasswd is not None:
        cfg.htpasswd = load_htpasswd(htpasswd)
    cfg.anonymous_pull = bool(data.get("anonymous_pull", False))
    token = data.get("token")
    if token is not None and token is not False:
        cfg.token = True
        if isinstance(token, dict):
            cfg.service = str(token.get("service") or "")
            cfg.expiry = int(token.get("expiry") or 300)
    if "access" in data:
        entries = data["access"] or []
        if not isinstance(entries, list):
            raise AuthConfigError(where, "'access' must be a list of rules")
        cfg.rules = [_rule(e, f"{where} access[{i}]") for i, e in enumerate(entries)]
    return cfg


def _rule(entry: Any, where: str) -> Rule:
    if not isinstance(entry, dict) or not isinstance(entry.get("repository"), str):
        raise AuthConfigError(where, "a rule needs 'repository', 'users' and 'actions'")
    users = entry.get("users") or []
    actions = entry.get("actions") or []
    if not isinstance(users, list) or not isinstance(actions, list):
        raise AuthConfigError(where, "'users' and 'actions' must be lists")
    bad = {str(a) for a in actions} - ACTIONS
    if bad:
        raise AuthConfigError(where, f"unknown actions {sorted(bad)} (pull, push, delete)")
    return Rule(entry["repository"], frozenset(map(str, users)), frozenset(map(str, actions)))


class PasswordChecker:
    """bcrypt checks are slow by design: remember the ones that passed (a hash of them)."""

    def __init__(self, users: dict[str, bytes]) -> None:
        self.users = users
        self._ok: set[tuple[str, bytes]] = set()

    def check(self, user: str, password: str) -> bool:
        import bcrypt

        hashed = self.users.get(user)
        if hashed is None:
            return False
        key = (user, hashlib.sha256(password.encode() + hashed).digest())
        if key in self._ok:
            return True
        if hashed.startswith(b"$2y$"):
            hashed = b"$2b$" + hashed[4:]
        try:
            ok = bcrypt.checkpw(password.encode(), hashed)
        except ValueError:
            return False
        if ok:
            self._ok.add(key)
        return ok


def parse_basic(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return (user, password) if sep else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenIssuer:
    """Signs and verifies the registry's Bearer tokens (JWT, EdDSA over Ed25519)."""

    def __init__(self, key_path: Path, expiry: int = 300) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self.expiry = expiry
        if key_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), None)
            if not isinstance(key, Ed25519PrivateKey):
                raise AuthConfigError(str(key_path), "not an Ed25519 private key")
        else:
            key = Ed25519PrivateKey.generate()
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            key_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = key_path.with_suffix(".tmp")
            tmp.write_bytes(pem)
            tmp.chmod(0o600)
            tmp.rename(key_path)
        self._key = key
        self._public = key.public_key()

    def issue(self, user: str | None, service: str, access: list[dict[str, Any]]) -> str:
        now = int(time.time())
        header = {"alg": "EdDSA", "typ": "JWT"}
        claims = {
            "iss": "portside",
            "sub": user or "",
            "aud": service,
            "iat": now,
            "nbf": now - 10,
            "exp": now + self.expiry,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = self._key.sign(signing_input.encode())
        return f"{signing_input}.{_b64(signature)}"

    def verify(self, token: str, service: str) -> dict[str, Any] | None:
        """The token's claims when it is ours, unexpired and for `service`; else None."""
        from cryptography.exceptions import InvalidSignature

        parts = token.split(".")
        if len(parts) != 3 or len(token) > 16384:
            return None
        try:
            self._public.verify(_unb64(parts[2]), f"{parts[0]}.{parts[1]}".encode())
            claims = json.loads(_unb64(parts[1]))
        except (InvalidSignature, ValueError, binascii.Error):
            return None
        if not isinstance(claims, dict):
            return None
        now = time.time()
        exp, nbf = claims.get("exp"), claims.get("nbf", 0)
        if not isinstance(exp, int) or not isinstance(nbf, int) or not nbf <= now < exp:
            return None
        if claims.get("aud") != service:
            return None
        return claims


def token_grants(claims: dict[str, Any], repo: str) -> frozenset[str]:
    """The actions a verified token's `access` claim grants on `repo`."""
    granted: set[str] = set()
    for entry in claims.get("access") or []:
        if (
            isinstance(entry, dict)
            and entry.get("type") == "repository"
            and entry.get("name") == repo
            and isinstance(entry.get("actions"), list)
        ):
            granted.update(a for a in entry["actions"] if a in ACTIONS)
    return frozenset(granted)
