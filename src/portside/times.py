"""Times as image configs and the Docker API write them (RFC 3339), read as UNIX timestamps.

A bottom-layer helper: the CLI, the engine's API and the builder all read image configs'
`created`, and lower layers never import the CLI, so the parser lives here, once.
"""

from __future__ import annotations


def parse_rfc3339(text: str) -> float:
    """An RFC 3339 time (`2024-05-01T12:00:00.5Z`) as a UNIX timestamp; ValueError when
    malformed (callers that read a user's text turn it into their own error)."""
    from datetime import datetime  # not at import time: kept off start-up paths

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def parse_time(text: str) -> float | None:
    """An RFC 3339 time (`2024-05-01T12:00:00.5Z`) as a UNIX timestamp; None when absent or
    malformed."""
    if not text:
        return None
    try:
        return parse_rfc3339(text)
    except ValueError:
        return None
