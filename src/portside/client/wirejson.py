"""JSON for the daemon client, without importing `json`.

`import json` compiles its regular expressions and pulls in `re` and `enum`: about 6 ms
of every `portside run` on these machines, a tenth of the whole command. The C
accelerators `json` itself uses (`_json`, in every CPython) do the same work without
that import.
"""

from __future__ import annotations

from _json import encode_basestring_ascii, make_encoder, make_scanner

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _not_serializable(obj: Any) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _constant(name: str) -> float:
    return float(name.replace("Infinity", "inf"))


class _Decoding:
    """The settings the C scanner reads from its context: `json.loads` defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_constant)
    memo: dict[str, str] = {}


_encode = make_encoder(None, _not_serializable, encode_basestring_ascii, None, ": ", ", ",
                       False, False, True)
_scan = make_scanner(_Decoding())  # type: ignore[arg-type]  # duck-typed like JSONDecoder
_SPACE = " \t\n\r"


def dumps(obj: Any) -> str:
    return "".join(_encode(obj, 0))


def loads(text: str | bytes | bytearray) -> Any:
    if not isinstance(text, str):
        text = bytes(text).decode()
    start = len(text) - len(text.lstrip(_SPACE))
    try:
        obj, end = _scan(text, start)
    except StopIteration as exc:
        raise ValueError(f"invalid JSON at character {exc.value}") from None
    if text[end:].strip(_SPACE):
        raise ValueError(f"extra data after JSON at character {end}")
    return obj
