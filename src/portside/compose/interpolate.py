"""Stage 2: `${VAR}` interpolation of every string value, as the Compose spec defines it.

`$VAR` and `${VAR}` take the variable (blank, with a warning, when unset);
`${VAR:-default}` / `${VAR-default}` use the default when VAR is unset or empty / unset;
`${VAR:?err}` / `${VAR?err}` fail when VAR is unset or empty / unset;
`${VAR:+alt}` / `${VAR+alt}` give alt when VAR is set and non-empty / set;
`$$` is a literal `$`. Defaults and alternatives may themselves hold `${...}`.
Values of variables are never interpolated again. Keys are left as they are.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from portside.compose.errors import ComposeError, KeyPath, dotted
from portside.compose.tags import Override

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPS = (":-", ":?", ":+", "-", "?", "+")

Warn = Callable[[str], None]


class InterpolationError(ComposeError):
    pass


def substitute(text: str, env: Mapping[str, str], file: str = "", where: str = "",
               warn: Warn | None = None) -> str:
    """Interpolate one string; errors name `file` and `where` (a key path)."""
    if "$" not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c != "$":
            j = text.find("$", i)
            j = n if j < 0 else j
            out.append(text[i:j])
            i = j
            continue
        nxt = text[i + 1] if i + 1 < n else ""
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            end = _closing(text, i + 2)
            if end < 0:
                raise InterpolationError(file, where, f"invalid interpolation format \"{text}\":"
                                         " unterminated \"${\"")
            out.append(_braced(text[i + 2:end], text, env, file, where, warn))
            i = end + 1
        elif m := NAME.match(text, i + 1):
            out.append(_lookup(m.group(), env, warn))
            i = m.end()
        else:
            raise InterpolationError(file, where, f"invalid interpolation format \"{text}\":"
                                     " use \"$$\" for a literal \"$\"")
    return "".join(out)


def _closing(text: str, start: int) -> int:
    """Index of the `}` closing a `${` whose body starts at `start`, or -1."""
    depth, i = 0, start
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
            continue
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    return -1


def _lookup(name: str, env: Mapping[str, str], warn: Warn | None) -> str:
    if name in env:
        return env[name]
    if warn:
        warn(f'the "{name}" variable is not set; defaulting to a blank string')
    return ""


def _braced(expr: str, text: str, env: Mapping[str, str], file: str, where: str,
            warn: Warn | None) -> str:
    m = NAME.match(expr)
    if not m:
        raise InterpolationError(file, where, f"invalid interpolation format \"{text}\":"
                                 f" bad variable name in \"${{{expr}}}\"")
    name, rest = m.group(), expr[m.end():]
    if not rest:
        return _lookup(name, env, warn)
    op = next((o for o in _OPS if rest.startswith(o)), None)
    if op is None:
        raise InterpolationError(file, where, f"invalid interpolation format \"{text}\":"
                                 f" unknown operator in \"${{{expr}}}\"")
    arg = rest[len(op):]
    is_set = name in env
    usable = is_set and (env[name] != "" if op.startswith(":") else True)
    if op.endswith("-"):
        return env[name] if usable else substitute(arg, env, file, where, warn)
    if op.endswith("+"):
        return substitute(arg, env, file, where, warn) if usable else ""
    if not usable:  # ":?" or "?"
        detail = f": {arg}" if arg else ""
        raise InterpolationError(file, where,
                                 f"required variable {name} is missing a value{detail}")
    return env[name]


def interpolate(data: Any, env: Mapping[str, str], file: str = "",
                path: KeyPath = (), warn: Warn | None = None) -> Any:
    """A copy of a parsed YAML tree with every string value interpolated."""
    if isinstance(data, str):
        return substitute(data, env, file, dotted(path), warn)
    if isinstance(data, dict):
        return {k: interpolate(v, env, file, (*path, str(k)), warn) for k, v in data.items()}
    if isinstance(data, list):
        return [interpolate(v, env, file, (*path, i), warn) for i, v in enumerate(data)]
    if isinstance(data, Override):
        return Override(interpolate(data.value, env, file, path, warn))
    return data
