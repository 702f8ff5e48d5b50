"""The flags of `run` and `create` as click options, from the table in `runspec`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from portside.cli.runspec import FLAGS, Flag, build_body

__all__ = ["build_body", "run_flags"]


def _option(f: Flag) -> Callable[[Any], Any]:
    if f.kind == "flag":
        return click.option(*f.decls, f.dest, is_flag=True, help=f.help)
    if f.kind == "multi":
        return click.option(*f.decls, f.dest, multiple=True, help=f.help)
    kind: Any = int if f.kind == "int" else click.Choice(list(f.choices)) if f.choices else None
    return click.option(*f.decls, f.dest, type=kind, default=f.default, help=f.help)


_FLAGS = [_option(f) for f in FLAGS]


def run_flags(f: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed(_FLAGS):
        f = decorator(f)
    return f
