"""Docker's detach keys: a key sequence on an attached TTY's stdin that ends the attach
(or the exec's stream) and leaves the container, or the exec'd process, running.

The sequence is `ctrl-p,ctrl-q` unless the client sends `detachKeys` (attach) or
`DetachKeys` (exec create): comma-separated keys, each one character or `ctrl-<c>` with
`<c>` a letter or one of `@[\\]^_`. As in Docker, only a TTY's stdin is watched (piped
input is passed on as it is), and bytes that start the sequence are held back until it is
complete (detach) or broken (they go on to the process).
"""

from __future__ import annotations

from portside.errors import InvalidArgument

DEFAULT = "ctrl-p,ctrl-q"
_CTRL = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def parse(text: str) -> bytes:
    """The bytes of a detach sequence; InvalidArgument (400) for a key Docker refuses."""
    out = bytearray()
    for key in text.split(","):
        key = key.strip()
        low = key.lower()
        if len(key) == 1 and key.isascii():
            out.append(ord(key))
        elif len(low) == 6 and low.startswith("ctrl-") and "a" <= low[5] <= "z":
            out.append(ord(low[5]) - ord("a") + 1)
        elif len(key) == 6 and low.startswith("ctrl-") and key[5] in _CTRL:
            out.append(_CTRL[key[5]])
        else:
            raise InvalidArgument(f"Invalid detach keys ({text}) provided")
    return bytes(out)


class Detector:
    """Watches a stdin stream for the sequence; `feed` gives what to pass on and whether
    the sequence is now complete."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.held = 0  # how many bytes of the sequence are held back

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        if not self.held and self.keys[0] not in data:
            return data, False  # the usual case: nothing to look at
        out = bytearray()
        for byte in data:
            if byte != self.keys[self.held]:
                out += self.keys[:self.held]  # a broken start goes on after all
                self.held = 0
                if byte != self.keys[0]:
                    out.append(byte)
                    continue
            self.held += 1
            if self.held == len(self.keys):
                self.held = 0
                return bytes(out), True
        return bytes(out), False


def for_stream(tty: bool, stdin: bool, text: str | None) -> bytes | None:
    """The sequence to watch for on an attach or exec stream (None: none)."""
    if not (tty and stdin):
        return None
    return parse(text or DEFAULT)
