"""Numbers in text, read as Docker reads them: ASCII digits only.

`str.isdigit()` is also true for '¹' or '²', which `int()` then refuses with a ValueError
(a traceback for a user's `--user ¹`), and `int()` takes other scripts' digits ('٣')
that Docker's parsers refuse. Every check before an `int()` of user or image text uses
`is_digits`.
"""

from __future__ import annotations


def is_digits(text: str) -> bool:
    """Non-empty and only ASCII 0-9."""
    return text.isascii() and text.isdigit()
