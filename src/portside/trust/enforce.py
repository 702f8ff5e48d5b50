"""The policy at work: `PolicyEnforcer` is the engine's `ImagePolicy`, filled from a
`policy.json`. A `sigstoreSigned` requirement fetches the image's signatures from the
registry its name points at; verdicts that admit are cached per (scope, name, digest), so
an image verified once starts without another registry round trip. Refusals are not
cached: an image signed after a refusal is admitted at the next try.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from portside.engine.imagepolicy import PolicyDenied
from portside.errors import PortsideError
from portside.oci import reference as refs
from portside.registry.client import RegistryClient
from portside.trust import signing
from portside.trust.policy import Policy, Requirement, Rule, find, load

log = logging.getLogger(__name__)


class PolicyEnforcer:
    def __init__(self, policy: Policy, source: signing.SignatureSource | None = None) -> None:
        self.policy = policy
        self.source = source  # None: each image's own registry, over HTTP
        self._admitted: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    async def admit(self, names: Sequence[str], digest: str) -> None:
        parsed: list[refs.Reference] = []
        for name in names:
            try:
                parsed.append(refs.parse(name))
            except PortsideError:
                continue
        if not parsed:
            parsed = [refs.Reference("", "")]  # no name: the default requirements only
        first: str | None = None
        for ref in parsed:
            reason = await self.verdict(ref, digest)
            if reason is None:
                return
            first = first or reason
        raise PolicyDenied(first or "refused")

    async def verdict(self, ref: refs.Reference, digest: str) -> str | None:
        """None when the policy admits `ref` at `digest`, else the one-line refusal."""
        rule = self.policy.rule_for(ref) if ref.domain else Rule("default", self.policy.default)
        key = (rule.scope, str(ref), digest)
        with self._lock:
            if key in self._admitted:
                return None
        started = time.monotonic()
        for req in rule.requirements:
            reason = await self._check(req, ref, digest)
            if reason is not None:
                where = ref.repository if ref.domain else "an image without a name"
                return (f"policy {self.policy.source}: {rule.scope} {req.type} refuses "
                        f"{where}@{digest}: {reason}")
        if any(r.type == "sigstoreSigned" for r in rule.requirements):
            log.info("verified %s@%s under %s in %.3fs", ref.repository, digest, rule.scope,
                     time.monotonic() - started)
        with self._lock:
            self._admitted.add(key)
        return None

    async def _check(self, req: Requirement, ref: refs.Reference, digest: str) -> str | None:
        if req.type == "insecureAcceptAnything":
            return None
        if req.type == "reject":
            return "the rule rejects every image"
        if not ref.domain:
            return "no registry to fetch signatures from"
        try:
            if self.source is not None:
                found = await signing.fetch(self.source, ref.path, digest)
            else:
                async with RegistryClient(ref.domain) as client:
                    found = await signing.fetch(signing.RemoteSource(client), ref.path, digest)
        except PortsideError as exc:
            return f"cannot fetch its signatures: {exc}"
        except OSError as exc:
            return f"cannot fetch its signatures: {exc.strerror or exc}"
        for key in req.keys:
            if signing.accepted(found, key, digest,
                                lambda signed: req.identity.matches(ref, signed)):
                return None
        if not found:
            return "no signature found"
        return f"none of its {len(found)} signature(s) verifies with the rule's keys and identity"


def in_force(root: Path, explicit: Path | None = None) -> PolicyEnforcer | None:
    """The enforcer of the policy in force for a process on `root` (`explicit`, else
    PORTSIDE_POLICY, else ROOT/policy.json); None when there is none."""
    found = find(explicit, root, dict(os.environ))
    return PolicyEnforcer(load(found)) if found else None


async def admit_remote(enforcer: PolicyEnforcer, reference: str) -> None:
    """Judge `reference` as its registry serves it now (before an in-process pull)."""
    ref = refs.parse(reference).with_default_tag()
    async with RegistryClient(ref.domain) as client:
        digest = await signing.resolve_digest(client, ref)
    await enforcer.admit([str(ref)], digest)
