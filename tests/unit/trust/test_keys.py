"""Keys in cosign's formats: the encrypted private key's JSON envelope, round trips, and
one-line errors that never carry the passphrase."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from portside.trust import keys


def envelope(pem: bytes) -> dict[str, object]:
    body = b"".join(pem.splitlines()[1:-1])
    doc: dict[str, object] = json.loads(base64.b64decode(body))
    return doc


def test_generated_pair_is_cosigns_format_and_round_trips() -> None:
    pair = keys.generate(b"s3cret")
    assert pair.private_pem.startswith(b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    assert pair.public_pem.startswith(b"-----BEGIN PUBLIC KEY-----\n")
    doc = envelope(pair.private_pem)
    assert doc["kdf"] == {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1},
                          "salt": doc["kdf"]["salt"]}  # type: ignore[index]
    assert len(base64.b64decode(doc["kdf"]["salt"])) == 32  # type: ignore[index]
    assert doc["cipher"]["name"] == "nacl/secretbox"  # type: ignore[index]
    assert len(base64.b64decode(doc["cipher"]["nonce"])) == 24  # type: ignore[index]
    private = keys.decrypt_private(pair.private_pem, b"s3cret", "release.key")
    public = keys.load_public(pair.public_pem, "release.pub")
    assert isinstance(private.curve, ec.SECP256R1)
    sig = keys.sign(private, b"payload")
    assert keys.verifies(public, b"payload", sig)
    assert not keys.verifies(public, b"payload!", sig)


def test_older_cosign_pem_type_is_read() -> None:
    pair = keys.generate(b"")
    old = pair.private_pem.replace(b"SIGSTORE", b"COSIGN")
    keys.decrypt_private(old, b"", "cosign.key")


def test_wrong_passphrase_is_one_line_without_the_passphrase() -> None:
    pair = keys.generate(b"right one")
    with pytest.raises(keys.KeyFileError) as caught:
        keys.decrypt_private(pair.private_pem, b"wrong guess", "release.key")
    message = str(caught.value)
    assert message == "release.key: wrong passphrase (or the key file is damaged)"
    assert "wrong guess" not in message and "right one" not in message


@pytest.mark.parametrize("data, expected", [
    (b"hello", "not a PEM file"),
    (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "is not a cosign private key"),
    (b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nbm90IGpzb24=\n"
     b"-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n", "encrypted key is not JSON"),
    (b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n", "has no end line"),
])
def test_bad_private_key_files(data: bytes, expected: str) -> None:
    with pytest.raises(keys.KeyFileError, match=expected):
        keys.decrypt_private(data, b"x", "k.key")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_as_a_key_file_fail_cleanly(data: bytes) -> None:
    with pytest.raises(keys.KeyFileError):
        keys.decrypt_private(data, b"x", "k.key")
    with pytest.raises(keys.KeyFileError):
        keys.load_public(data, "k.pub")
