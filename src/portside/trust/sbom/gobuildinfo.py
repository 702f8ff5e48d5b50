"""The build information Go (1.18 and later) embeds in its binaries: the toolchain version
and the modules linked in, as `go version -m` prints them.

The linker writes a 32-byte header starting with the magic `\\xff Go buildinf:`, aligned to
16 bytes; with flag bit 2 set the two strings follow inline, each prefixed by a uvarint
length (debug/buildinfo in Go's source). Older binaries keep pointers instead: we skip
those rather than guess at their data sections.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAGIC = b"\xff Go buildinf:"
_INLINE = 0x2


@dataclass(frozen=True)
class GoModule:
    path: str
    version: str


@dataclass(frozen=True)
class BuildInfo:
    go_version: str  # "go1.21.5"
    main: GoModule | None
    deps: tuple[GoModule, ...] = field(default=())


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(data):
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            break
    raise ValueError("bad uvarint")


def parse(data: bytes) -> BuildInfo | None:
    """The build info of an executable's bytes, or None when it has none we can read."""
    at = data.find(MAGIC)
    while at != -1 and at % 16:
        at = data.find(MAGIC, at + 1)
    if at == -1 or len(data) < at + 32 or not data[at + 15] & _INLINE:
        return None
    try:
        size, pos = _uvarint(data, at + 32)
        version = data[pos : pos + size].decode()
        size, pos = _uvarint(data, pos + size)
        raw = data[pos : pos + size]
    except (ValueError, UnicodeDecodeError):
        return None
    # modinfo is framed by 16-byte binary sentinels (cmd/go's modinfo start/end markers)
    if len(raw) >= 33 and raw[-17:-16] == b"\n":
        raw = raw[16:-16]
    modinfo = raw.decode(errors="replace")
    main: GoModule | None = None
    deps: list[GoModule] = []
    for line in modinfo.splitlines():
        fields = line.split("\t")
        if fields[0] == "mod" and len(fields) >= 3:
            main = GoModule(fields[1], fields[2])
        elif fields[0] == "dep" and len(fields) >= 3:
            deps.append(GoModule(fields[1], fields[2]))
        elif fields[0] == "=>" and len(fields) >= 3 and deps:
            deps[-1] = GoModule(fields[1], fields[2])  # a replace directive: what is linked
    return BuildInfo(version, main, tuple(deps))
