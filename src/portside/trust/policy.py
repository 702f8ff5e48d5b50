"""The containers `policy.json` (containers-policy.json(5)), the format skopeo and podman
read: a `default` list of requirements and, per transport, scopes with their own lists.

portside evaluates the `docker` transport (images named by a registry reference; an image
made locally is named like one, `docker.io/library/busybox`, and is judged by the same
scopes). Scopes are matched most specific first: the reference with its tag or digest, the
repository, each enclosing namespace, the registry host, then `*.domain` wildcards; the
transport's `""` scope, then `default`, when none matches. Every requirement of the chosen
list must be satisfied.

Requirements: `insecureAcceptAnything`, `reject`, and `sigstoreSigned` with `keyPath`,
`keyPaths`, `keyData` or `keyDatas` (public keys; one must have signed) and `signedIdentity`
(`matchRepoDigestOrExact` by default, `matchExact`, `matchRepository`, `exactReference`,
`exactRepository`, `remapIdentity`). GPG `signedBy`, Fulcio and Rekor are not supported:
a policy naming them is refused when read rather than half enforced.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from portside.errors import InvalidArgument, PortsideError
from portside.oci import reference as refs
from portside.trust import keys

MAX_POLICY = 1 << 20


class PolicyInvalid(InvalidArgument):
    pass


def _position(text: str, needle: str) -> str:
    at = text.find(needle)
    if at < 0:
        return ""
    line = text.count("\n", 0, at) + 1
    return f"line {line} column {at - (text.rfind(chr(10), 0, at) + 1) + 1}: "


@dataclass(frozen=True)
class Identity:
    type: str = "matchRepoDigestOrExact"
    docker_reference: str = ""
    docker_repository: str = ""
    prefix: str = ""
    signed_prefix: str = ""

    def matches(self, image: refs.Reference, signed: str) -> bool:
        """Whether a signature claiming `signed` fits the image named `image`."""
        try:
            claim = refs.parse(signed)
        except PortsideError:
            return False
        if self.type == "matchRepository":
            return claim.repository == image.repository
        if self.type == "exactReference":
            return _same(claim, refs.parse(self.docker_reference))
        if self.type == "exactRepository":
            return claim.repository == refs.parse(self.docker_repository).repository
        if self.type == "remapIdentity" and image.repository.startswith(self.prefix):
            image = refs.parse(self.signed_prefix + str(image).removeprefix(self.prefix))
        if self.type in ("matchRepoDigestOrExact", "remapIdentity") and image.digest \
                and not image.tag:
            return claim.repository == image.repository
        return _same(claim, image)  # matchExact, and a tagged name under the default


def _same(a: refs.Reference, b: refs.Reference) -> bool:
    return (a.repository, a.tag, a.digest) == (b.repository, b.tag, b.digest)


@dataclass(frozen=True)
class Requirement:
    type: str
    keys: tuple[ec.EllipticCurvePublicKey, ...] = ()
    identity: Identity = field(default_factory=Identity)


@dataclass(frozen=True)
class Rule:
    """The requirements that apply to an image, and where they came from (for messages)."""

    scope: str
    requirements: tuple[Requirement, ...]

    def describe(self) -> str:
        kinds = ",".join(r.type for r in self.requirements) or "(none)"
        return f"{self.scope} [{kinds}]"


@dataclass(frozen=True)
class Policy:
    source: str
    text: str
    default: tuple[Requirement, ...]
    docker: dict[str, tuple[Requirement, ...]]

    def rule_for(self, ref: refs.Reference) -> Rule:
        """The most specific scope of the docker transport for `ref`."""
        for scope in _scopes(ref):
            if scope in self.docker:
                return Rule(f'transports.docker["{scope}"]', self.docker[scope])
        return Rule("default", self.default)


def _scopes(ref: refs.Reference) -> list[str]:
    out = []
    if ref.tag:
        out.append(f"{ref.repository}:{ref.tag}")
    if ref.digest:
        out.append(f"{ref.repository}@{ref.digest}")
    parts = ref.repository.split("/")
    out += ["/".join(parts[:n]) for n in range(len(parts), 0, -1)]
    host = ref.domain.rsplit(":", 1)[0] if not ref.domain.endswith("]") else ref.domain
    labels = host.split(".")
    out += ["*." + ".".join(labels[n:]) for n in range(1, len(labels))]
    out.append("")
    return out


_REQ_FIELDS: dict[str, set[str]] = {
    "insecureAcceptAnything": {"type"},
    "reject": {"type"},
    "sigstoreSigned": {"type", "keyPath", "keyPaths", "keyData", "keyDatas", "signedIdentity"},
}
_UNSUPPORTED = {"signedBy": "GPG signatures (signedBy)",
                "signedBaseLayer": "signedBaseLayer"}
_IDENTITY_FIELDS = {"matchExact": {"type"}, "matchRepoDigestOrExact": {"type"},
                    "matchRepository": {"type"}, "exactReference": {"type", "dockerReference"},
                    "exactRepository": {"type", "dockerRepository"},
                    "remapIdentity": {"type", "prefix", "signedPrefix"}}


class _Reader:
    def __init__(self, text: str, source: str, base: Path) -> None:
        self.text, self.source, self.base = text, source, base

    def fail(self, what: str, near: str = "") -> PolicyInvalid:
        return PolicyInvalid(f"{self.source}: {_position(self.text, near) if near else ''}{what}")

    def obj(self, value: Any, where: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(f"{where} must be an object")
        for name in value:
            if name not in allowed:
                raise self.fail(f"unknown field {name!r} in {where}", f'"{name}"')
        return value

    def string(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(f"{where} must be a non-empty string")
        return value

    def requirements(self, value: Any, where: str) -> tuple[Requirement, ...]:
        if not isinstance(value, list) or not value:
            raise self.fail(f"{where} must be a non-empty list of requirements")
        return tuple(self.requirement(v, f"{where}[{i}]") for i, v in enumerate(value))

    def requirement(self, value: Any, where: str) -> Requirement:
        kind = value.get("type") if isinstance(value, dict) else None
        if kind in _UNSUPPORTED:
            raise self.fail(f"{where}: {_UNSUPPORTED[kind]} are not supported by portside",
                            f'"{kind}"')
        if kind not in _REQ_FIELDS:
            raise self.fail(f"{where}: unknown requirement type {kind!r}",
                            f'"{kind}"' if isinstance(kind, str) else "")
        doc = self.obj(value, where, _REQ_FIELDS[kind])
        if kind != "sigstoreSigned":
            return Requirement(kind)
        return Requirement(kind, self.keys(doc, where),
                           self.identity(doc.get("signedIdentity"), f"{where}.signedIdentity"))

    def keys(self, doc: dict[str, Any], where: str) -> tuple[ec.EllipticCurvePublicKey, ...]:
        given = [k for k in ("keyPath", "keyPaths", "keyData", "keyDatas") if k in doc]
        if len(given) != 1:
            raise self.fail(f"{where}: exactly one of keyPath, keyPaths, keyData, keyDatas")
        name = given[0]
        values = doc[name] if name.endswith("s") else [doc[name]]
        if not isinstance(values, list) or not values:
            raise self.fail(f"{where}.{name} must be a non-empty list")
        out = []
        for v in values:
            text = self.string(v, f"{where}.{name}")
            try:
                if name.startswith("keyPath"):
                    path = self.base / text
                    out.append(keys.load_public(keys.read_key_file(path), str(path)))
                else:
                    pem = base64.standard_b64decode(text)
                    out.append(keys.load_public(pem, "the key"))
            except keys.KeyFileError as exc:
                raise self.fail(f"{where}.{name}: {exc}", f'"{name}"') from None
            except ValueError:
                raise self.fail(f"{where}.{name} is not base64", f'"{name}"') from None
        return tuple(out)

    def identity(self, value: Any, where: str) -> Identity:
        if value is None:
            return Identity()
        kind = value.get("type") if isinstance(value, dict) else None
        if kind not in _IDENTITY_FIELDS:
            raise self.fail(f"{where}: unknown identity type {kind!r}")
        doc = self.obj(value, where, _IDENTITY_FIELDS[kind])
        ident = Identity(kind, str(doc.get("dockerReference", "")),
                         str(doc.get("dockerRepository", "")), str(doc.get("prefix", "")),
                         str(doc.get("signedPrefix", "")))
        try:
            if kind == "exactReference":
                refs.parse(self.string(doc.get("dockerReference"), f"{where}.dockerReference"))
            if kind == "exactRepository":
                refs.parse(self.string(doc.get("dockerRepository"), f"{where}.dockerRepository"))
        except PolicyInvalid:
            raise
        except PortsideError as exc:
            raise self.fail(f"{where}: {exc}") from None
        if kind == "remapIdentity":
            self.string(doc.get("prefix"), f"{where}.prefix")
            self.string(doc.get("signedPrefix"), f"{where}.signedPrefix")
        return ident


def parse(text: str, source: str, base: Path) -> Policy:
    """The policy in `text` (from `source`, named in errors; key paths relative to `base`)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyInvalid(f"{source}: line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    reader = _Reader(text, source, base)
    doc = reader.obj(doc, "the policy", {"default", "transports"})
    if "default" not in doc:
        raise reader.fail('"default" is required (a policy without it rejects nothing)')
    default = reader.requirements(doc["default"], "default")
    transports = reader.obj(doc.get("transports", {}), "transports", {
        "docker", "atomic", "containers-storage", "dir", "docker-archive", "docker-daemon",
        "oci", "oci-archive", "ostree", "sif", "tarball"})
    docker: dict[str, tuple[Requirement, ...]] = {}
    for transport, scopes in transports.items():
        if not isinstance(scopes, dict):
            raise reader.fail(f"transports.{transport} must be an object", f'"{transport}"')
        for scope, reqs in scopes.items():
            parsed = reader.requirements(reqs, f'transports.{transport}["{scope}"]')
            if transport == "docker":
                docker[scope] = parsed
    return Policy(source, text, default, docker)


def load(path: Path) -> Policy:
    try:
        if path.stat().st_size > MAX_POLICY:
            raise PolicyInvalid(f"{path}: larger than 1 MiB")
        text = path.read_text()
    except OSError as exc:
        raise PolicyInvalid(f"cannot read policy {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise PolicyInvalid(f"{path}: not UTF-8 text") from None
    return parse(text, str(path), path.parent)


def find(explicit: Path | None, root: Path, environ: dict[str, str]) -> Path | None:
    """The policy in force: `explicit` (a `--policy`), else `PORTSIDE_POLICY`, else the
    root's `policy.json` when it exists; None means no policy."""
    if explicit is not None:
        return explicit
    if environ.get("PORTSIDE_POLICY"):
        return Path(environ["PORTSIDE_POLICY"])
    default = root / "policy.json"
    return default if default.exists() else None

