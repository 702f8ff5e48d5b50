"""Dockerfile variable substitution and word splitting, as BuildKit's shell lexer does it.

`$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:+alt}`, `${VAR+alt}`,
`${VAR:?message}` and `${VAR?message}`; single quotes are literal, double quotes allow
expansion, the escape character (`\\` or `` ` `` by the `# escape=` directive) makes the next
character literal. Quotes are removed from the result. Unset variables expand to "".
"""

from __future__ import annotations

from collections.abc import Mapping

MAX_NESTING = 64
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


class SubstitutionError(ValueError):
    """A word cannot be expanded (unterminated quote, bad `${...}`); the caller adds the line."""


class _Lexer:
    def __init__(
        self, text: str, env: Mapping[str, str], escape: str, split: bool, depth: int = 0
    ) -> None:
        if depth > MAX_NESTING:
            raise SubstitutionError(f"substitutions nested more than {MAX_NESTING} deep")
        self.depth = depth
        self.text = text
        self.pos = 0
        self.env = env
        self.escape = escape
        self.split = split

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1 if ch else 0
        return ch

    def words(self, stop: str = "") -> list[str]:
        """Read until `stop` (consumed) or the end; returns the words (one unless splitting)."""
        words: list[str] = []
        cur: list[str] = []
        in_word = False
        while True:
            ch = self.next()
            if not ch:
                if stop:
                    raise SubstitutionError(f"missing '{stop}' in substitution")
                break
            if stop and ch == stop:
                break
            if self.split and ch in " \t\r\n":
                if in_word:
                    words.append("".join(cur))
                    cur, in_word = [], False
                continue
            in_word = True
            if ch == self.escape:
                nxt = self.next()
                if nxt:
                    cur.append(nxt)
            elif ch == "'":
                cur.append(self._single())
            elif ch == '"':
                cur.append(self._double())
            elif ch == "$":
                value = self._dollar()
                if self.split:
                    parts = value.split()
                    if value[:1].isspace() and in_word and cur:
                        words.append("".join(cur))
                        cur = []
                    for part in parts[:-1]:
                        cur.append(part)
                        words.append("".join(cur))
                        cur = []
                    if parts:
                        cur.append(parts[-1])
                    if value[-1:].isspace() and parts:
                        words.append("".join(cur))
                        cur, in_word = [], False
                else:
                    cur.append(value)
            else:
                cur.append(ch)
        if in_word or not self.split:
            words.append("".join(cur))
        return words

    def _single(self) -> str:
        end = self.text.find("'", self.pos)
        if end < 0:
            raise SubstitutionError(
                "unexpected end of statement while looking for matching single-quote"
            )
        out = self.text[self.pos : end]
        self.pos = end + 1
        return out

    def _double(self) -> str:
        out: list[str] = []
        while True:
            ch = self.next()
            if not ch:
                raise SubstitutionError(
                    "unexpected end of statement while looking for matching double-quote"
                )
            if ch == '"':
                return "".join(out)
            if ch == self.escape:
                nxt = self.peek()
                if nxt in ('"', "$", self.escape):
                    out.append(self.next())
                    continue
                if not nxt:
                    continue
                out.append(ch)
            elif ch == "$":
                out.append(self._dollar())
            else:
                out.append(ch)

    def _name(self) -> str:
        start = self.pos
        while self.peek() and self.peek() in _NAME_CHARS:
            self.pos += 1
        return self.text[start : self.pos]

    def _dollar(self) -> str:
        if self.peek() != "{":
            name = self._name()
            if not name:
                return "$"
            return self.env.get(name, "")
        self.next()
        name = self._name()
        if not name:
            raise SubstitutionError("bad substitution: expected a variable name after '${'")
        ch = self.next()
        value = self.env.get(name)
        if not ch:
            raise SubstitutionError("missing '}' in substitution")
        if ch == "}":
            return value or ""
        colon = ch == ":"
        if colon:
            ch = self.next()
        if ch not in ("-", "+", "?"):
            shown = ch or "end of line"
            raise SubstitutionError(
                f"unsupported modifier ({':' if colon else ''}{shown}) in substitution"
            )
        sub = _Lexer(self.text, self.env, self.escape, False, self.depth + 1)
        sub.pos = self.pos
        word = sub.words(stop="}")[0]
        self.pos = sub.pos
        missing = value is None or (colon and value == "")
        if ch == "-":
            return word if missing else (value or "")
        if ch == "+":
            return "" if missing else word
        if missing:
            what = "empty" if colon and value == "" else "unset"
            raise SubstitutionError(f"{name}: {word or f'is not allowed to be {what}'}")
        return value or ""


def expand(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """One word with variables expanded and quotes removed."""
    return _Lexer(word, env, escape, split=False).words()[0]


def expand_words(text: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Split `text` on unquoted whitespace, expanding each word (unquoted expansions split)."""
    return _Lexer(text, env, escape, split=True).words()


def split_words(text: str, escape: str = "\\") -> list[str]:
    """Split on unquoted whitespace keeping quotes and escapes (BuildKit's parseWords).

    Used for `ENV a="x y" b=z`: each word is later expanded on its own.
    """
    words: list[str] = []
    cur: list[str] = []
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if not quote and ch in " \t\r\n":
            if cur:
                words.append("".join(cur))
                cur = []
            i += 1
            continue
        cur.append(ch)
        if ch == escape and i + 1 < len(text) and quote != "'":
            cur.append(text[i + 1])
            i += 2
            continue
        if quote and ch == quote:
            quote = ""
        elif not quote and ch in "'\"":
            quote = ch
        i += 1
    if cur:
        words.append("".join(cur))
    return words
