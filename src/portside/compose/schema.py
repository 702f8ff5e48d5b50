"""Stage 4a: the structure of one compose file (keys, types, value formats).

Each file is checked on its own right after interpolation, so that a message names the
file the mistake is in. The checks are small combinators mirroring the Compose spec's JSON
schema; `x-` keys are allowed in every mapping. Cross-references (depends_on, named
volumes, secrets...) are `validate`'s job on the merged model.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any

from portside.compose.errors import ComposeError, KeyPath
from portside.compose.tags import Override, Reset

NAME = re.compile(r"[a-zA-Z0-9._-]+")


def describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string \"{value}\""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


class Node:
    """One expected shape; `check` raises ComposeError at the first mistake."""

    expect = "a value"

    def accepts(self, value: Any) -> bool:
        return True

    def check(self, value: Any, file: str, path: KeyPath) -> None:
        if not self.accepts(value):
            raise ComposeError(file, path, f"must be {self.expect}, not {describe(value)}")


class AnyValue(Node):
    pass


class Null(Node):
    expect = "null"

    def accepts(self, value: Any) -> bool:
        return value is None


class Str(Node):
    expect = "a string"

    def __init__(self, numbers: bool = False, fmt: Callable[[str], Any] | None = None,
                 choices: tuple[str, ...] = ()) -> None:
        self.numbers, self.fmt, self.choices = numbers, fmt, choices

    def accepts(self, value: Any) -> bool:
        if self.numbers and isinstance(value, int | float) and not isinstance(value, bool):
            return True
        return isinstance(value, str)

    def check(self, value: Any, file: str, path: KeyPath) -> None:
        super().check(value, file, path)
        if self.choices and value not in self.choices:
            raise ComposeError(file, path, f"invalid value \"{value}\": expected one of "
                               + ", ".join(self.choices))
        if self.fmt:
            try:
                self.fmt(value)
            except ValueError as exc:
                raise ComposeError(file, path, str(exc)) from None


class Int(Node):
    expect = "an integer"

    def __init__(self, minimum: int | None = None) -> None:
        self.minimum = minimum

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        return isinstance(value, int) or (isinstance(value, str)
                                          and re.fullmatch(r"-?\d+", value) is not None)

    def check(self, value: Any, file: str, path: KeyPath) -> None:
        super().check(value, file, path)
        if self.minimum is not None and int(value) < self.minimum:
            raise ComposeError(file, path, f"must be at least {self.minimum}, not {value}")


class Num(Node):
    expect = "a number"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if isinstance(value, int | float):
            return True
        return isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d*)?|-?\.\d+", value) is not None


class Bool(Node):
    expect = "a boolean (true or false)"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool) or (isinstance(value, str)
                                           and value.lower() in ("true", "false"))


class Seq(Node):
    def __init__(self, item: Node, unique: bool = False) -> None:
        self.item, self.unique = item, unique
        self.expect = "a list"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, list)

    def check(self, value: Any, file: str, path: KeyPath) -> None:
        super().check(value, file, path)
        seen: list[Any] = []
        for i, item in enumerate(value):
            self.item.check(item, file, (*path, i))
            if self.unique:
                if item in seen:
                    raise ComposeError(file, (*path, i), f"duplicate entry \"{item}\"")
                seen.append(item)


class Struct(Node):
    """A mapping with known keys; anything else but `x-...` is an error."""

    expect = "a mapping"

    def __init__(self, fields: dict[str, Node], required: tuple[str, ...] = ()) -> None:
        self.fields, self.required = fields, required

    def accepts(self, value: Any) -> bool:
        return isinstance(value, dict)

    def check(self, value: Any, file: str, path: KeyPath) -> None:
        super().check(value, file, path)
        for key, item in value.items():
            if not isinstance(key, str):
                raise ComposeError(file, path, f"keys must be strings, not {describe(key)}")
            if key.startswith("x-"):
                continue
            node = self.fields.get(key)
            if node is None:
                close = difflib.get_close_matches(key, list(self.fields), n=1)
                hint = f' (did you mean "{close[0]}"?)' if close else ""
                raise ComposeError(file, (*path, key), f"unknown key{hint}")
            if isinstance(item, Reset):
                continue
            if isinstance(item, Override):
                item = item.value
            node.check(item, file, (*path, key))
        for key in self.required:
            if key not in value:
                raise ComposeError(file, path, f"missing required key \"{key}\"")


class Names(Node):
    """A mapping of user-chosen names (services, networks...) to one shape each."""

    expect = "a mapping"

    def __init__(self, item: Node, what: str, nullable: bool = True) -> None:
        self.item, self.what, self.nullable = item, what, nullable

    def accepts(self, value: Any) -> bool:
        return isinstance(value, dict)

    def check(self, value: Any, file: str, path: KeyPath) -> None:
        super().check(value, file, path)
        for key, item in value.items():
            if not isinstance(key, str) or not NAME.fullmatch(key):
                raise ComposeError(file, path, f"invalid {self.what} name \"{str(key)}\":"
                                   " use letters, digits, '.', '_' and '-'")
            if isinstance(item, Override):
                item = item.value
            if (item is None and self.nullable) or isinstance(item, Reset):
                continue
            self.item.check(item, file, (*path, key))


class ListOrDict(Node):
    """`[K=V, ...]` or `{K: V}` with scalar (or null) values: environment, labels, args."""

    expect = "a list of KEY=VALUE strings or a mapping"

    def __init__(self, sep: str = "=") -> None:
        self.sep = sep

    def accepts(self, value: Any) -> bool:
        return isinstance(value, list | dict)

    def check(self, value: Any, file: str, path: KeyPath) -> None:
        super().check(value, file, path)
        if isinstance(value, list):
            for i, item in enumerate(value):
                if not isinstance(item, str):
                    raise ComposeError(file, (*path, i),
                                       f"must be a KEY{self.sep}VALUE string, not {describe(item)}")
                if not item or item.startswith(self.sep):
                    raise ComposeError(file, (*path, i), f"invalid entry \"{item}\"")
            return
        for key, item in value.items():
            if not isinstance(key, str):
                raise ComposeError(file, path, f"keys must be strings, not {describe(key)}")
            if isinstance(item, list | dict):
                raise ComposeError(file, (*path, key),
                                   f"must be a string, number, boolean or null, not {describe(item)}")


class Either(Node):
    """The first alternative whose type fits is checked; none fits -> one type message."""

    def __init__(self, *options: Node, expect: str) -> None:
        self.options, self.expect = options, expect

    def accepts(self, value: Any) -> bool:
        return any(o.accepts(value) for o in self.options)

    def check(self, value: Any, file: str, path: KeyPath) -> None:
        for option in self.options:
            if option.accepts(value):
                option.check(value, file, path)
                return
        super().check(value, file, path)


class Fmt(Node):
    """A value checked by a syntax parser (ports, volumes...)."""

    def __init__(self, base: Node, parse: Callable[[Any], Any]) -> None:
        self.base, self.parse, self.expect = base, parse, base.expect

    def accepts(self, value: Any) -> bool:
        return self.base.accepts(value)

    def check(self, value: Any, file: str, path: KeyPath) -> None:
        self.base.check(value, file, path)
        try:
            self.parse(value)
        except ValueError as exc:
            raise ComposeError(file, path, str(exc)) from None
