"""Signing keys in cosign's formats, so cosign, skopeo and podman take portside's keys.

The public key is a PEM `PUBLIC KEY` (SubjectPublicKeyInfo). The private key is cosign's
encrypted format (go-securesystemslib `encrypted`): a PEM `ENCRYPTED SIGSTORE PRIVATE KEY`
(older cosign wrote `ENCRYPTED COSIGN PRIVATE KEY`; both are read) whose body is JSON
`{"kdf": {"name": "scrypt", "params": {"N", "r", "p"}, "salt"}, "cipher": {"name":
"nacl/secretbox", "nonce"}, "ciphertext"}` (bytes in standard base64): the PKCS#8 DER of
an ECDSA P-256 key, sealed by a NaCl secretbox whose key scrypt derives from the passphrase.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from portside.errors import InvalidArgument

PEM_TYPE = "ENCRYPTED SIGSTORE PRIVATE KEY"
PEM_TYPES = (PEM_TYPE, "ENCRYPTED COSIGN PRIVATE KEY")
# go-securesystemslib's defaults (cosign's `generate-key-pair`).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 32768, 8, 1
SALT_BYTES, KEY_BYTES = 32, 32
MAX_KEY_FILE = 64 * 1024


class KeyFileError(InvalidArgument):
    """A key file that cannot be used; never carries the passphrase."""


@dataclass(frozen=True)
class KeyPair:
    private_pem: bytes
    public_pem: bytes


def _b64(data: bytes) -> str:
    return base64.standard_b64encode(data).decode()


def _pem(kind: str, der: bytes) -> bytes:
    body = _b64(der)
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return (f"-----BEGIN {kind}-----\n" + "\n".join(lines) + f"\n-----END {kind}-----\n").encode()


def _unpem(data: bytes, where: str) -> tuple[str, bytes]:
    text = data.decode("ascii", "replace").strip()
    first, _, rest = text.partition("\n")
    if not (first.startswith("-----BEGIN ") and first.endswith("-----")):
        raise KeyFileError(f"{where}: not a PEM file")
    kind = first[len("-----BEGIN "):-5]
    body, end, _ = rest.partition(f"-----END {kind}-----")
    if not end:
        raise KeyFileError(f"{where}: PEM block {kind!r} has no end line")
    try:
        return kind, base64.b64decode("".join(body.split()), validate=True)
    except ValueError:
        raise KeyFileError(f"{where}: PEM body is not base64") from None


def _kdf(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=KEY_BYTES, n=n, r=r, p=p).derive(passphrase)


def encrypt_private(key: ec.EllipticCurvePrivateKey, passphrase: bytes) -> bytes:
    """`key` in cosign's encrypted PEM."""
    import nacl.secret
    import nacl.utils

    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    salt = os.urandom(SALT_BYTES)
    box = nacl.secret.SecretBox(_kdf(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P))
    nonce = nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE)
    sealed = box.encrypt(der, nonce).ciphertext  # Go's secretbox.Seal: tag || ciphertext
    doc = {"kdf": {"name": "scrypt", "params": {"N": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P},
                   "salt": _b64(salt)},
           "cipher": {"name": "nacl/secretbox", "nonce": _b64(nonce)},
           "ciphertext": _b64(sealed)}
    return _pem(PEM_TYPE, json.dumps(doc, separators=(",", ":")).encode())


def generate(passphrase: bytes) -> KeyPair:
    """A new ECDSA P-256 pair: (encrypted private PEM, public PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return KeyPair(encrypt_private(key, passphrase), public_pem(key.public_key()))


def public_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def _field(doc: Any, where: str, *path: str) -> Any:
    for name in path:
        if not isinstance(doc, dict) or name not in doc:
            raise KeyFileError(f"{where}: encrypted key lacks {'.'.join(path)}")
        doc = doc[name]
    return doc


def _bytes_field(doc: Any, where: str, *path: str) -> bytes:
    value = _field(doc, where, *path)
    try:
        return base64.standard_b64decode(str(value))
    except ValueError:
        raise KeyFileError(f"{where}: {'.'.join(path)} is not base64") from None


def decrypt_private(data: bytes, passphrase: bytes, where: str) -> ec.EllipticCurvePrivateKey:
    """The key in cosign's encrypted PEM `data` (from `where`, named in errors)."""
    import nacl.exceptions
    import nacl.secret

    kind, body = _unpem(data, where)
    if kind not in PEM_TYPES:
        raise KeyFileError(f"{where}: PEM type {kind!r} is not a cosign private key")
    try:
        doc = json.loads(body)
    except ValueError:
        raise KeyFileError(f"{where}: encrypted key is not JSON") from None
    if _field(doc, where, "kdf", "name") != "scrypt" or \
            _field(doc, where, "cipher", "name") != "nacl/secretbox":
        raise KeyFileError(f"{where}: only scrypt + nacl/secretbox keys are supported")
    params = _field(doc, where, "kdf", "params")
    try:
        n, r, p = (int(_field(params, where, k)) for k in ("N", "r", "p"))
        if not (1 < n <= 1 << 20 and 0 < r <= 32 and 0 < p <= 16):
            raise ValueError  # a hostile file must not make scrypt eat the machine
        box_key = _kdf(passphrase, _bytes_field(doc, where, "kdf", "salt"), n, r, p)
    except (TypeError, ValueError):
        raise KeyFileError(f"{where}: bad scrypt parameters") from None
    box = nacl.secret.SecretBox(box_key)
    try:
        der = box.decrypt(_bytes_field(doc, where, "ciphertext"),
                          _bytes_field(doc, where, "cipher", "nonce"))
    except (nacl.exceptions.CryptoError, ValueError):
        raise KeyFileError(f"{where}: wrong passphrase (or the key file is damaged)") from None
    try:
        key = serialization.load_der_private_key(der, None)
    except ValueError:
        raise KeyFileError(f"{where}: the decrypted key is not PKCS#8") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyFileError(f"{where}: not an ECDSA key")
    return key


def load_public(data: bytes, where: str) -> ec.EllipticCurvePublicKey:
    """The ECDSA public key in PEM `data`."""
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise KeyFileError(f"{where}: not a PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise KeyFileError(f"{where}: not an ECDSA public key")
    return key


def read_key_file(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_KEY_FILE:
            raise KeyFileError(f"{path}: too large for a key file")
        return path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read key: {exc.strerror}") from None


def sign(key: ec.EllipticCurvePrivateKey, payload: bytes) -> bytes:
    """ECDSA-SHA256 over `payload`, ASN.1 DER (what cosign verifies)."""
    return key.sign(payload, ec.ECDSA(hashes.SHA256()))


def verifies(key: ec.EllipticCurvePublicKey, payload: bytes, signature: bytes) -> bool:
    try:
        key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True
