"""Signature checks without a registry: the payload's claims, a changed signature, a
signature for another digest, and the identity check."""

from __future__ import annotations

import json

from cryptography.hazmat.primitives.asymmetric import ec

from portside.oci import reference as refs
from portside.trust import keys, signing

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32


def signed(digest: str, identity: str) -> tuple[signing.Signature, ec.EllipticCurvePublicKey]:
    private = ec.generate_private_key(ec.SECP256R1())
    payload = signing.make_payload(digest, identity)
    return signing.Signature(payload, keys.sign(private, payload)), private.public_key()


def test_payload_is_cosigns_simple_signing() -> None:
    doc = json.loads(signing.make_payload(DIGEST, "reg:5000/shop/web:1"))
    assert doc == {"critical": {"identity": {"docker-reference": "reg:5000/shop/web:1"},
                                "image": {"docker-manifest-digest": DIGEST},
                                "type": "cosign container image signature"},
                   "optional": None}
    assert signing.parse_payload(b'{"critical": {"type": "other"}}') is None
    assert signing.parse_payload(b"not json") is None
    assert signing.sig_tag(DIGEST) == f"sha256-{'ab' * 32}.sig"


def test_accepted_only_for_the_key_the_digest_and_the_identity() -> None:
    sig, public = signed(DIGEST, "reg:5000/shop/web:1")
    same_repo = signing.same_repository(refs.parse("reg:5000/shop/web:2"))
    assert signing.accepted([sig], public, DIGEST, same_repo) is not None
    # a signature for another digest
    assert signing.accepted([sig], public, OTHER, same_repo) is None
    # another repository's name in the payload
    assert signing.accepted([sig], public, DIGEST,
                            signing.same_repository(refs.parse("reg:5000/shop/api:1"))) is None
    # another key
    _, stranger = signed(DIGEST, "reg:5000/shop/web:1")
    assert signing.accepted([sig], stranger, DIGEST, same_repo) is None
    # the signature changed by one bit, or the payload by one byte
    flipped = bytearray(sig.signature)
    flipped[-1] ^= 1
    assert signing.accepted([signing.Signature(sig.payload, bytes(flipped))], public, DIGEST,
                            same_repo) is None
    edited = sig.payload.replace(b"web", b"wep")
    assert signing.accepted([signing.Signature(edited, sig.signature)], public, DIGEST,
                            same_repo) is None
    # one good signature among bad ones is enough
    assert signing.accepted([signing.Signature(edited, sig.signature), sig], public, DIGEST,
                            same_repo) is not None
