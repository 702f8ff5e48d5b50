"""`.dockerignore`: which context paths a build may not see, with Docker's pattern rules.

Patterns are Go `filepath.Match` patterns plus `**` (any number of directories), cleaned
like paths (leading `/` and `./` dropped). `!pattern` re-includes. The last pattern that
matches a path decides. A pattern also matches everything below a directory it matches.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pattern:
    text: str  # cleaned, without the leading "!"
    exclusion: bool  # "!pattern": re-include
    regex: re.Pattern[str]
    depth: int  # number of path components


def clean(path: str) -> str:
    """filepath.Clean, relative to the context root ("" for the root itself)."""
    cleaned = posixpath.normpath("/" + path.strip()).lstrip("/")
    return "" if cleaned == "." else cleaned


def _compile(pattern: str) -> re.Pattern[str]:
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 1
                if i + 1 < n and pattern[i + 1] == "/":
                    i += 1
                if i + 1 >= n:
                    out.append(".*")  # "**" at the end: everything (as .gitignore)
                else:
                    out.append("(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif ch == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                raise ValueError(f"syntax error in pattern {pattern!r}: unterminated [")
            body = pattern[i + 1 : end]
            if body.startswith("^") or body.startswith("!"):
                body = "^" + body[1:].replace("\\", "\\\\")
            else:
                body = body.replace("\\", "\\\\").replace("^", "\\^")
            out.append(f"[{body}]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    out.append("$")
    return re.compile("".join(out), re.DOTALL)


def parse(text: str) -> list[Pattern]:
    """The patterns of a .dockerignore file (comments and blank lines skipped)."""
    patterns: list[Pattern] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        cleaned = clean(line)
        if not cleaned:
            continue
        patterns.append(Pattern(cleaned, exclusion, _compile(cleaned), cleaned.count("/") + 1))
    return patterns


class Matcher:
    """Decides whether a context path is ignored."""

    def __init__(self, patterns: list[Pattern], source: str = ".dockerignore") -> None:
        self.patterns = patterns
        self.source = source
        self.has_exclusions = any(p.exclusion for p in patterns)

    @classmethod
    def for_context(cls, context: Path, ignore_file: Path | None = None) -> Matcher:
        path = ignore_file or context / ".dockerignore"
        try:
            text = path.read_text(errors="surrogateescape")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return cls([])
        try:
            return cls(parse(text), path.name)
        except ValueError as exc:
            from portside.errors import InvalidArgument

            raise InvalidArgument(f"{path}: {exc}") from None

    def ignored(self, relpath: str) -> bool:
        """True when `relpath` (slash-separated, relative to the context) is excluded."""
        if not self.patterns:
            return False
        parts = relpath.split("/")
        result = False
        for p in self.patterns:
            if p.regex.match(relpath) or (
                p.depth < len(parts) and p.regex.match("/".join(parts[: p.depth]))
            ):
                result = not p.exclusion
        return result

    def may_reinclude_below(self, reldir: str) -> bool:
        """Whether some `!` pattern could match a path under the ignored directory `reldir`."""
        if not self.has_exclusions:
            return False
        prefix = reldir + "/"
        for p in self.patterns:
            if not p.exclusion:
                continue
            literal = re.split(r"[*?\[\\]", p.text, maxsplit=1)[0]
            if literal.startswith(prefix) or prefix.startswith(literal) or literal == "":
                return True
        return False
