"""`.env` and `env_file` files: `KEY=VALUE` lines, as Docker Compose reads them.

Supported: comments, blank lines, `export KEY=...`, single quotes (literal), double
quotes (`\\n`, `\\t`, `\\"`, `\\\\` escapes, may span lines), unquoted values with a
trailing ` #comment`, and `${VAR}` interpolation in unquoted and double-quoted values from
the variables defined above and from `lookup`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

from portside.compose.errors import ComposeError

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def parse(text: str, display: str, lookup: Mapping[str, str] | None = None
          ) -> dict[str, str | None]:
    """Parse an env file's text; `display` names it in errors. `KEY` alone maps to None."""
    from portside.compose.interpolate import substitute

    lookup = lookup or {}
    out: dict[str, str | None] = {}

    def resolve(value: str, where: str) -> str:
        env = {**{k: v for k, v in out.items() if v is not None}, **lookup}
        return substitute(value, env, display, where)

    lines = text.replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines):
        number = i + 1
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[7:].lstrip()
        key, eq, rest = line.partition("=")
        key = key.strip()
        if not _KEY.fullmatch(key):
            raise ComposeError(display, f"line {number}", f"invalid variable name \"{key}\"")
        if not eq:
            out[key] = None
            continue
        rest = rest.lstrip()
        if rest.startswith("'"):
            end = rest.find("'", 1)
            while end < 0 and i < len(lines):
                rest += "\n" + lines[i]
                i += 1
                end = rest.find("'", 1)
            if end < 0:
                raise ComposeError(display, f"line {number}", "unterminated single quote")
            out[key] = rest[1:end]
        elif rest.startswith('"'):
            value, end = _double(rest)
            while end < 0 and i < len(lines):
                rest += "\n" + lines[i]
                i += 1
                value, end = _double(rest)
            if end < 0:
                raise ComposeError(display, f"line {number}", "unterminated double quote")
            out[key] = resolve(value, f"line {number}")
        else:
            value = re.split(r"\s+#", rest, maxsplit=1)[0].rstrip()
            out[key] = resolve(value, f"line {number}")
    return out


def _double(text: str) -> tuple[str, int]:
    """The unescaped body of a double-quoted value starting at text[0]; end -1 if open.

    `\\$` stays escaped as `$$` so that interpolation leaves a literal dollar."""
    out: list[str] = []
    i = 1
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append("$$" if nxt == "$" else _ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        if c == '"':
            return "".join(out), i
        out.append(c)
        i += 1
    return "", -1


def read(path: Path, display: str, lookup: Mapping[str, str] | None = None,
         required: bool = True, opener: Callable[[Path], str] | None = None
         ) -> dict[str, str | None]:
    """Read and parse an env file; a missing optional file is empty."""
    try:
        text = (opener or (lambda p: p.read_text(encoding="utf-8")))(path)
    except FileNotFoundError:
        if not required:
            return {}
        raise ComposeError(display, "", f"env file \"{str(path)}\" not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ComposeError(display, "", f"cannot read env file \"{str(path)}\": {exc}") from None
    return parse(text, str(path), lookup)
