"""Sigstore (cosign) signatures of images in a registry, laid out where other tools look.

A signature is cosign's simple-signing payload (`critical.image.docker-manifest-digest`,
`critical.identity.docker-reference`, `critical.type`) signed with ECDSA-SHA256. It is
stored twice in the image's repository:

- as a layer of the manifest tagged `sha256-<hex>.sig`, the payload its blob and the
  base64 signature its `dev.cosignproject.cosign/signature` annotation: what cosign writes
  and what containers/image (skopeo, podman) reads with `use-sigstore-attachments: true`;
- as an OCI 1.1 referrer of the image manifest (artifactType cosign's signature type),
  found through the referrers API.

Verification reads both and accepts the image when one signature verifies with the key,
names the image's digest and passes the identity check.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import ec

from portside.errors import PortsideError
from portside.oci import digest as digests
from portside.oci import mediatypes as mt
from portside.oci import reference as refs
from portside.registry.client import RegistryClient
from portside.registry.errors import RemoteError
from portside.trust import keys

SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
ARTIFACT_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"
PAYLOAD_TYPE = "cosign container image signature"
MAX_PAYLOAD = 64 * 1024
MAX_SIGNATURES = 64


class VerificationFailed(PortsideError):
    """No signature of the image verifies with the key."""

    exit_code = 1


@dataclass(frozen=True)
class Signature:
    payload: bytes
    signature: bytes


@dataclass(frozen=True)
class Payload:
    """What a simple-signing payload claims."""

    digest: str
    identity: str


def sig_tag(digest: str) -> str:
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}-{hexpart}.sig"


def make_payload(digest: str, identity: str) -> bytes:
    doc = {"critical": {"identity": {"docker-reference": identity},
                        "image": {"docker-manifest-digest": digest},
                        "type": PAYLOAD_TYPE},
           "optional": None}
    return json.dumps(doc, separators=(",", ":")).encode()


def parse_payload(data: bytes) -> Payload | None:
    """The claims of a payload; None when it is not a cosign image signature."""
    try:
        doc = json.loads(data)
        critical = doc["critical"]
        if critical["type"] != PAYLOAD_TYPE:
            return None
        digest = critical["image"]["docker-manifest-digest"]
        identity = critical["identity"]["docker-reference"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(digest, str) or not isinstance(identity, str) or not digests.is_valid(digest):
        return None
    return Payload(digest, identity)


def _config(payload_digests: list[str]) -> bytes:
    # cosign's and containers/image's config of a signature image: an empty image whose
    # diff_ids are the payloads' digests.
    doc = {"architecture": "", "os": "", "config": {},
           "rootfs": {"type": "layers", "diff_ids": payload_digests}}
    return json.dumps(doc, separators=(",", ":")).encode()


def _layer(payload: bytes, signature: bytes) -> dict[str, Any]:
    return {"mediaType": SIMPLESIGNING, "size": len(payload),
            "digest": digests.of_bytes(payload),
            "annotations": {SIGNATURE_ANNOTATION: base64.standard_b64encode(signature).decode()}}


def _descriptor(media_type: str, body: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "size": len(body), "digest": digests.of_bytes(body)}


async def _sig_manifest(client: RegistryClient, repo: str, digest: str) -> dict[str, Any] | None:
    try:
        body, _, _ = await client.get_manifest(repo, sig_tag(digest))
    except RemoteError as exc:
        if getattr(exc, "status", 0) == 404:
            return None
        raise
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


async def resolve_digest(client: RegistryClient, ref: refs.Reference) -> str:
    """The digest of the manifest (or index) `ref` names, as the registry serves it."""
    if ref.digest:
        return ref.digest
    _, _, digest = await client.get_manifest(ref.path, ref.tag or refs.DEFAULT_TAG)
    return digest


async def attach(client: RegistryClient, ref: refs.Reference, digest: str,
                 payload: bytes, signature: bytes) -> None:
    """Store one signature of `digest` in `ref`'s repository: added to the `.sig` tag's
    manifest (kept signatures stay) and pushed as a referrer."""
    repo = ref.path
    await client.put_blob(repo, payload)
    layer = _layer(payload, signature)
    existing = await _sig_manifest(client, repo, digest)
    layers = [d for d in (existing or {}).get("layers", []) if isinstance(d, dict)
              and d != layer]
    layers.append(layer)
    config = _config([str(d.get("digest", "")) for d in layers])
    await client.put_blob(repo, config)
    tagged = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
              "config": _descriptor(mt.OCI_CONFIG, config), "layers": layers}
    await client.put_manifest(repo, sig_tag(digest), json.dumps(tagged).encode(), mt.OCI_MANIFEST)
    # the OCI 1.1 referrer: an artifact manifest with the image as its subject
    subject_body, subject_type, _ = await client.get_manifest(repo, digest)
    empty = b"{}"
    await client.put_blob(repo, empty)
    referrer = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "artifactType": ARTIFACT_TYPE,
                "config": _descriptor(mt.OCI_EMPTY, empty), "layers": [layer],
                "subject": _descriptor(subject_type or mt.OCI_MANIFEST, subject_body)}
    body = json.dumps(referrer).encode()
    await client.put_manifest(repo, digests.of_bytes(body), body, mt.OCI_MANIFEST)


def _from_layers(layers: Any) -> list[tuple[str, str]]:
    """(payload digest, base64 signature) of each simple-signing layer."""
    out: list[tuple[str, str]] = []
    for layer in layers if isinstance(layers, list) else []:
        if not isinstance(layer, dict) or layer.get("mediaType") != SIMPLESIGNING:
            continue
        annotations = layer.get("annotations")
        sig = annotations.get(SIGNATURE_ANNOTATION) if isinstance(annotations, dict) else None
        if isinstance(sig, str) and digests.is_valid(str(layer.get("digest", ""))):
            out.append((str(layer["digest"]), sig))
    return out


class SignatureSource(Protocol):
    """Where signatures are read: a registry over HTTP (`RemoteSource`) or a registry
    server's own storage (`portside.trust.pushpolicy`)."""

    async def manifest(self, repo: str, reference: str) -> bytes | None:
        """The manifest's bytes, None when there is none."""
        ...

    async def blob(self, repo: str, digest: str, limit: int) -> bytes: ...

    async def referrers(self, repo: str, digest: str) -> list[dict[str, Any]]: ...


class RemoteSource:
    def __init__(self, client: RegistryClient) -> None:
        self.client = client

    async def manifest(self, repo: str, reference: str) -> bytes | None:
        try:
            body, _, _ = await self.client.get_manifest(repo, reference)
        except RemoteError as exc:
            if getattr(exc, "status", 0) == 404:
                return None
            raise
        return body

    async def blob(self, repo: str, digest: str, limit: int) -> bytes:
        return await self.client.get_blob(repo, digest, limit)

    async def referrers(self, repo: str, digest: str) -> list[dict[str, Any]]:
        return await self.client.referrers(repo, digest)


def _json(body: bytes | None) -> dict[str, Any] | None:
    try:
        doc = json.loads(body) if body is not None else None
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


async def fetch(source: SignatureSource, repo: str, digest: str) -> list[Signature]:
    """The signatures of `digest` stored in `repo`: the `.sig` tag's and the referrers'."""
    found: list[tuple[str, str]] = []
    tagged = _json(await source.manifest(repo, sig_tag(digest)))
    if tagged is not None:
        found += _from_layers(tagged.get("layers"))
    for desc in await source.referrers(repo, digest):
        if desc.get("artifactType") != ARTIFACT_TYPE or len(found) >= MAX_SIGNATURES:
            continue
        doc = _json(await source.manifest(repo, str(desc.get("digest", ""))))
        found += _from_layers(doc.get("layers") if doc is not None else None)
    out: list[Signature] = []
    for payload_digest, sig in dict.fromkeys(found[:MAX_SIGNATURES]):
        try:
            signature = base64.standard_b64decode(sig)
        except ValueError:
            continue
        payload = await source.blob(repo, payload_digest, MAX_PAYLOAD)
        out.append(Signature(payload, signature))
    return out


IdentityCheck = Callable[[str], bool]


def accepted(signatures: list[Signature], key: ec.EllipticCurvePublicKey, digest: str,
             identity_ok: IdentityCheck) -> Payload | None:
    """The claims of the first signature that verifies with `key`, names `digest` and whose
    identity passes `identity_ok`; None when none does."""
    for sig in signatures:
        if not keys.verifies(key, sig.payload, sig.signature):
            continue
        claims = parse_payload(sig.payload)
        if claims is not None and claims.digest == digest and identity_ok(claims.identity):
            return claims
    return None


def same_repository(ref: refs.Reference) -> IdentityCheck:
    """Identity check: the signed reference names `ref`'s repository (any tag)."""
    def check(identity: str) -> bool:
        try:
            return refs.parse(identity).repository == ref.repository
        except PortsideError:
            return False
    return check


async def sign_image(ref: refs.Reference, key: ec.EllipticCurvePrivateKey, identity: str) -> str:
    """Sign the manifest `ref` names in its registry; its digest."""
    async with RegistryClient(ref.domain) as client:
        digest = await resolve_digest(client, ref)
        payload = make_payload(digest, identity)
        await attach(client, ref, digest, payload, keys.sign(key, payload))
    return digest


async def verify_image(ref: refs.Reference, key: ec.EllipticCurvePublicKey) -> tuple[str, Payload]:
    """(digest, claims) of `ref` when a signature by `key` in its registry verifies."""
    async with RegistryClient(ref.domain) as client:
        digest = await resolve_digest(client, ref)
        found = await fetch(RemoteSource(client), ref.path, digest)
    claims = accepted(found, key, digest, same_repository(ref))
    if claims is None:
        what = f"{len(found)} signature(s), none" if found else "no signature"
        raise VerificationFailed(f"{ref.repository}@{digest}: {what} verifies with the key")
    return digest, claims
