"""Registry credentials in Docker's `config.json` (`$DOCKER_CONFIG` or `~/.docker`).

Only the `auths` map is read and written (`{"auths": {"host:port": {"auth": base64(user:pw)}}}`);
every other key of an existing file is kept as it was. Credential helpers (`credsStore`)
are not consulted: a host listed only there has no credentials for portside.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from portside.errors import InvalidArgument

DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io",
                   "registry-1.docker.io")


class CredentialsFileError(InvalidArgument):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")


def config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text() or "{}")
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise CredentialsFileError(path, f"cannot read credentials ({exc})") from None
    if not isinstance(data, dict):
        raise CredentialsFileError(path, "not a JSON object")
    return data


def _keys(host: str) -> list[str]:
    """The `auths` keys that may name `host` (bare, with a scheme, Docker Hub's aliases)."""
    if host in DOCKER_HUB_KEYS:
        return list(DOCKER_HUB_KEYS)
    return [host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/"]


def get(host: str) -> tuple[str, str] | None:
    """(user, password) stored for `host`, or None."""
    auths = _load(config_path()).get("auths") or {}
    if not isinstance(auths, dict):
        return None
    for key in _keys(host):
        entry = auths.get(key)
        if not isinstance(entry, dict):
            continue
        if entry.get("auth"):
            try:
                user, sep, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError, TypeError):
                raise CredentialsFileError(config_path(), f"bad 'auth' entry for {key}") from None
            if sep:
                return user, password
        if entry.get("username") and entry.get("password"):
            return str(entry["username"]), str(entry["password"])
    return None


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config-")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent="\t")
            f.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def store(host: str, user: str, password: str) -> Path:
    """Save credentials for `host`; returns the file written."""
    path = config_path()
    data = _load(path)
    auths = data.get("auths")
    if not isinstance(auths, dict):
        auths = data["auths"] = {}
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    key = "https://index.docker.io/v1/" if host in DOCKER_HUB_KEYS else host
    auths[key] = {"auth": token}
    _write(path, data)
    return path


def erase(host: str) -> bool:
    """Forget the credentials of `host`; False when there were none."""
    path = config_path()
    data = _load(path)
    auths = data.get("auths")
    if not isinstance(auths, dict):
        return False
    removed = [k for k in _keys(host) if auths.pop(k, None) is not None]
    if removed:
        _write(path, data)
    return bool(removed)
