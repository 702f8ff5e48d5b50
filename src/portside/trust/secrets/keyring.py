"""The root's secret key: AES-256-GCM over every stored secret value.

The key is 32 random bytes in a root-only file (0600) made at first use (written aside,
then linked into place), so two daemons starting at once agree on one key. A sealed value
is a 12-byte random nonce and the ciphertext with its tag; the associated data binds it to
its record.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from portside.errors import PortsideError

KEY_FILE = "secrets.key"
_NONCE = 12


class SealBroken(PortsideError):
    """A sealed value does not open with this root's key (another key, or tampered)."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"a stored secret does not open with the key {path} "
                         "(the key file was replaced, or the value was altered)")


class Keyring:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._aead: AESGCM | None = None

    def _key(self) -> AESGCM:
        if self._aead is None:
            self._aead = AESGCM(self._load())
        return self._aead

    def _load(self) -> bytes:
        if not self.path.exists():
            self._make()
        st = self.path.lstat()
        if st.st_mode & 0o077:
            raise PortsideError(f"secret key {self.path} is readable by others "
                                f"(mode {st.st_mode & 0o777:o}): chmod 600 it")
        key = self.path.read_bytes()
        if len(key) != 32:
            raise PortsideError(f"secret key {self.path} is not 32 bytes")
        return key

    def _make(self) -> None:
        """Write a new key beside the path, then link it into place: link fails when
        another process made one first, and no reader ever sees a half-written key."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{os.urandom(4).hex()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, AESGCM.generate_key(bit_length=256))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, self.path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()

    def seal(self, data: bytes, context: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._key().encrypt(nonce, data, context)

    def open(self, sealed: bytes, context: bytes) -> bytes:
        try:
            return self._key().decrypt(sealed[:_NONCE], sealed[_NONCE:], context)
        except InvalidTag:
            raise SealBroken(self.path) from None
