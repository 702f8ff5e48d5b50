"""Pull-through cache (placeholder until implemented)."""

from __future__ import annotations

from typing import Any


class Proxy:
    registry: Any

    async def fetch_manifest(self, repo: str, reference: str) -> None: ...
    async def fetch_blob(self, repo: str, digest: str) -> None: ...
    async def refresh_tags(self, repo: str) -> None: ...
    async def close(self) -> None: ...
