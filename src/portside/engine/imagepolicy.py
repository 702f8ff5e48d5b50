"""The seam through which the engine asks whether an image may enter or start.

The engine calls `admit` where an image enters (pull) and where a container is made from
one (create); the builder (its FROM images, through `blocking`) and the orchestrator
receive the same object. The trust layer
fills it from the containers `policy.json` (`portside.trust.enforce`); with no policy the
engine holds None and checks nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Protocol

from portside.errors import PortsideError


class PolicyDenied(PortsideError):
    """The policy refuses an image: one line naming the rule, repository and digest."""

    exit_code = 1
    http_status = 403


class ImagePolicy(Protocol):
    async def admit(self, names: Sequence[str], digest: str) -> None:
        """Return if the image of manifest (or index) `digest`, known by one of `names`
        (references with a registry), is admitted; raise PolicyDenied otherwise. Verdicts
        may be cached per digest."""
        ...


def blocking(policy: ImagePolicy) -> Callable[[str, str], None]:
    """`policy` for a caller in a worker thread without an event loop (the builder's FROM):
    (reference, digest) -> None, raising PolicyDenied."""
    def admit(reference: str, digest: str) -> None:
        asyncio.run(policy.admit([reference], digest))
    return admit
