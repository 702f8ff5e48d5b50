"""Read a Dockerfile into logical lines: directives, comments, continuations, heredocs.

This is the lexical half of parsing (BuildKit's `parser` package): it knows nothing of what
instructions mean, only where each one starts and ends. `instructions.parse` gives them
meaning. Every error is a DockerfileError naming the file and the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from portside.build.errors import DockerfileError

KNOWN_DIRECTIVES = ("syntax", "escape", "check")
_DIRECTIVE_RE = re.compile(r"^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.*?)[ \t]*$")
_HEREDOC_RE = re.compile(r"^(\d*)<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\3$")
HEREDOC_INSTRUCTIONS = frozenset({"RUN", "COPY", "ADD"})
MAX_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Heredoc:
    """A here-document: `name` is its delimiter, `content` its text (newline-terminated)."""

    name: str
    content: str
    expand: bool  # False when the delimiter was quoted: no variable expansion
    strip_tabs: bool
    fd: int | None = None


@dataclass(frozen=True)
class Node:
    """One logical instruction line as written."""

    keyword: str  # upper-cased
    args: str  # everything after the keyword, continuation lines joined
    line: int  # first line (1-based)
    end_line: int
    heredocs: tuple[Heredoc, ...] = ()

    @property
    def original(self) -> str:
        return f"{self.keyword} {self.args}".rstrip()


@dataclass
class ParsedFile:
    path: str
    escape: str = "\\"
    directives: dict[str, str] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)


def _directives(lines: list[str], path: str) -> tuple[dict[str, str], int]:
    """Parser directives sit at the very top; the first other line ends them."""
    found: dict[str, str] = {}
    i = 0
    for i, line in enumerate(lines):  # noqa: B007
        m = _DIRECTIVE_RE.match(line)
        if not m or m.group(1).lower() not in KNOWN_DIRECTIVES:
            return found, i
        name, value = m.group(1).lower(), m.group(2)
        if name in found:
            raise DockerfileError(path, i + 1, f"only one {name} parser directive can be used")
        if name == "escape" and value not in ("\\", "`"):
            raise DockerfileError(
                path, i + 1, f"invalid escape token {value!r}: it must be ` or \\"
            )
        found[name] = value
    return found, len(lines)


def _heredoc_markers(args: str, escape: str) -> list[tuple[str, bool, bool, int | None]]:
    from portside.build.shellwords import split_words

    out = []
    for word in split_words(args, escape):
        m = _HEREDOC_RE.match(word)
        if m:
            fd = int(m.group(1)) if m.group(1) else None
            out.append((m.group(4), m.group(3) == "", m.group(2) == "-", fd))
    return out


def parse_text(text: str, path: str = "Dockerfile") -> ParsedFile:
    """Split Dockerfile text into directives and logical instruction lines."""
    if len(text) > MAX_BYTES:
        raise DockerfileError(path, 0, f"Dockerfile is larger than {MAX_BYTES} bytes")
    text = text.removeprefix("\ufeff")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    directives, i = _directives(lines, path)
    parsed = ParsedFile(path, directives.get("escape", "\\"), directives)
    escape = parsed.escape
    continuation = re.compile(re.escape(escape) + r"[ \t]*$")
    n = len(lines)
    while i < n:
        first = lines[i].lstrip(" \t")
        i += 1
        if not first or first.startswith("#"):
            continue
        start = i
        parts: list[str] = []
        text_part = first
        while True:
            m = continuation.search(text_part)
            if not m:
                parts.append(text_part)
                break
            parts.append(text_part[: m.start()])
            while i < n and (not lines[i].strip() or lines[i].lstrip(" \t").startswith("#")):
                i += 1
            if i >= n:
                raise DockerfileError(
                    path, n, "unexpected end of file: the last line ends with a line continuation"
                )
            text_part = lines[i].lstrip(" \t")
            i += 1
        logical = "".join(parts).strip()
        keyword, _, args = logical.partition(" ")
        if "\t" in keyword:
            keyword, _, rest = keyword.partition("\t")
            args = rest + (" " + args if args else "")
        keyword = keyword.upper()
        args = args.strip()
        heredocs: list[Heredoc] = []
        if keyword in HEREDOC_INSTRUCTIONS and "<<" in args:
            for name, expand, strip, fd in _heredoc_markers(args, escape):
                body: list[str] = []
                opened = i
                while True:
                    if i >= n:
                        raise DockerfileError(
                            path, opened, f"unterminated heredoc: no line {name!r} ends it"
                        )
                    line = lines[i]
                    i += 1
                    if strip:
                        line = line.lstrip("\t")
                    if line == name:
                        break
                    body.append(line + "\n")
                heredocs.append(Heredoc(name, "".join(body), expand, strip, fd))
        parsed.nodes.append(Node(keyword, args, start, i, tuple(heredocs)))
    return parsed
