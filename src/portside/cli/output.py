"""Rendering helpers shared by the commands: tables, sizes, ages, JSON."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import click

from portside.engine.interface import Document, at


def human_size(n: float) -> str:
    """Sizes as Docker prints them: decimal units, three significant digits."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.3g}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1000
    return f"{n}B"


def since(ts: float) -> str:
    """`5 minutes ago`, like Docker's CREATED column."""
    delta = max(0.0, time.time() - ts)
    for span, unit in ((86400 * 365, "year"), (86400 * 30, "month"), (86400 * 7, "week"),
                       (86400, "day"), (3600, "hour"), (60, "minute")):
        if delta >= span:
            n = int(delta // span)
            return f"{n} {unit}{'s' if n > 1 else ''} ago"
    return "Less than a minute ago" if delta >= 1 else "Less than a second ago"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain, aligned table like Docker's (columns separated by three spaces)."""
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for r in cells:
        line = "   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))
        click.echo(line.rstrip())


def dump_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=4, sort_keys=False))


def render(template: str, doc: Document) -> str:
    """The subset of Go templates scripts use: `{{.A.B}}` and `{{json .A}}`."""
    import re

    def sub(m: re.Match[str]) -> str:
        v = at(doc, *filter(None, m.group(2).split(".")))
        if m.group(1):
            return json.dumps(v)
        if isinstance(v, bool):
            return "true" if v else "false"
        if v is None:
            return "<no value>"
        return json.dumps(v) if isinstance(v, dict | list) else str(v)

    out = re.sub(r"{{\s*(json\s+)?(\.[\w.]*)\s*}}", sub, template)
    return out.replace("\\t", "\t").replace("\\n", "\n")
