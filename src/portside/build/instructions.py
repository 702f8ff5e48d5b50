"""The Dockerfile instructions as typed values, with their flags checked.

`parse(text, path)` turns a Dockerfile into a `Dockerfile`: global ARGs and stages, each a
list of instructions. Values are kept as written; variables are expanded when a stage is
built (they depend on build args and ENV). Any malformed input raises DockerfileError.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from portside.build.dockerfile import Heredoc, Node, parse_text
from portside.build.errors import DockerfileError
from portside.numbers import is_digits

KEYWORDS = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
]
# BuildKit expands variables in these (and in FROM with global ARGs only).
EXPANDS = frozenset(
    [
        "ADD",
        "COPY",
        "ENV",
        "EXPOSE",
        "FROM",
        "LABEL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
        "ARG",
    ]
)
FLAGS: dict[str, dict[str, str]] = {  # flag -> "str" | "bool" | "list"
    "FROM": {"platform": "str"},
    "RUN": {"mount": "list", "network": "str"},
    "COPY": {
        "from": "str",
        "chown": "str",
        "chmod": "str",
        "link": "bool",
        "exclude": "list",
    },
    "ADD": {
        "chown": "str",
        "chmod": "str",
        "link": "bool",
        "checksum": "str",
        "exclude": "list",
    },
    "HEALTHCHECK": {
        "interval": "str",
        "timeout": "str",
        "start-period": "str",
        "start-interval": "str",
        "retries": "str",
    },
}
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_.]*$")


@dataclass
class Instruction:
    """One instruction: its keyword, where it is, its flags and its arguments as written."""

    keyword: str
    line: int
    end_line: int
    original: str
    args: str
    flags: dict[str, object] = field(default_factory=dict)
    heredocs: tuple[Heredoc, ...] = ()
    # Filled per keyword:
    words: list[str] = field(default_factory=list)  # JSON form, or list-like args
    json_form: bool = False
    pairs: list[tuple[str, str | None]] = field(default_factory=list)  # ENV/LABEL/ARG
    mounts: list[dict[str, str]] = field(default_factory=list)  # RUN --mount
    trigger: Instruction | None = None  # ONBUILD
    healthcheck: dict[str, object] | None = None

    def flag(self, name: str, default: object = None) -> object:
        return self.flags.get(name, default)


@dataclass
class Stage:
    index: int
    base: str  # as written (expanded with global ARGs when built)
    name: str | None
    platform: str | None
    line: int
    instructions: list[Instruction] = field(default_factory=list)

    @property
    def display(self) -> str:
        return self.name or f"stage-{self.index}"


@dataclass
class Dockerfile:
    path: str
    escape: str
    directives: dict[str, str]
    global_args: list[Instruction]
    stages: list[Stage]

    def stage(self, name_or_index: str) -> Stage | None:
        key = name_or_index.lower()
        for stage in self.stages:
            if stage.name == key:
                return stage
        if is_digits(key) and int(key) < len(self.stages):
            return self.stages[int(key)]
        return None


class Ctx:
    def __init__(self, path: str, escape: str) -> None:
        self.path = path
        self.escape = escape

    def fail(self, node: Node | Instruction, message: str) -> DockerfileError:
        return DockerfileError(self.path, node.line, message)


def parse(text: str, path: str = "Dockerfile") -> Dockerfile:
    """Parse a whole Dockerfile; raises DockerfileError on anything malformed."""
    parsed = parse_text(text, path)
    ctx = Ctx(path, parsed.escape)
    if not parsed.nodes:
        raise DockerfileError(path, 0, "the Dockerfile is empty: it needs at least a FROM")
    global_args: list[Instruction] = []
    stages: list[Stage] = []
    names: dict[str, int] = {}
    for node in parsed.nodes:
        inst = _instruction(ctx, node)
        if inst.keyword == "FROM":
            stage = _stage(ctx, inst, len(stages))
            if stage.name is not None:
                if stage.name in names:
                    raise ctx.fail(
                        inst,
                        f"duplicate stage name {stage.name!r} (first used on line {names[stage.name]})",
                    )
                names[stage.name] = inst.line
            stages.append(stage)
        elif not stages:
            if inst.keyword != "ARG":
                raise ctx.fail(
                    inst, f"{inst.keyword} before the first FROM: only ARG may come before FROM"
                )
            global_args.append(inst)
        else:
            stages[-1].instructions.append(inst)
    if not stages:
        raise DockerfileError(
            path, parsed.nodes[-1].line, "no FROM instruction: a build needs a base stage"
        )
    return Dockerfile(path, parsed.escape, parsed.directives, global_args, stages)


def _stage(ctx: Ctx, inst: Instruction, index: int) -> Stage:
    words = inst.words
    if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
        raise ctx.fail(
            inst, "FROM requires either one or three arguments: FROM <image> [AS <name>]"
        )
    name = None
    if len(words) == 3:
        name = words[2].lower()
        if not _STAGE_NAME.match(name):
            raise ctx.fail(
                inst,
                f"invalid stage name {words[2]!r}: it must start with a letter and contain only"
                " letters, digits, '-', '_' and '.'",
            )
    platform = inst.flags.get("platform")
    return Stage(index, words[0], name, str(platform) if platform else None, inst.line)


def _instruction(ctx: Ctx, node: Node, onbuild: bool = False) -> Instruction:
    if node.keyword not in KEYWORDS:
        close = difflib.get_close_matches(node.keyword, KEYWORDS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        shown = node.keyword if len(node.keyword) <= 40 else node.keyword[:40] + "..."
        raise ctx.fail(node, f"unknown instruction: {shown}{hint}")
    flags, rest = _flags(ctx, node)
    inst = Instruction(
        node.keyword, node.line, node.end_line, node.original, rest, flags, node.heredocs
    )
    from portside.build.arguments import KINDS  # it builds on this module's model

    KINDS[node.keyword](ctx, inst)
    return inst


def _flags(ctx: Ctx, node: Node) -> tuple[dict[str, object], str]:
    allowed = FLAGS.get(node.keyword, {})
    flags: dict[str, object] = {}
    rest = node.args
    while rest.startswith("--"):
        word, _, after = rest.partition(" ")
        if "\t" in word:
            word, _, tail = word.partition("\t")
            after = tail + " " + after
        rest = after.lstrip(" \t")
        if word == "--":
            break
        name, eq, value = word[2:].partition("=")
        if name not in allowed:
            raise ctx.fail(
                node,
                f"{node.keyword}: unknown flag --{name}"
                if name
                else f"{node.keyword}: malformed flag {word!r}",
            )
        kind = allowed[name]
        if kind == "bool":
            if eq and value.lower() not in ("true", "false"):
                raise ctx.fail(
                    node, f"{node.keyword}: --{name} expects true or false, not {value!r}"
                )
            flags[name] = not eq or value.lower() == "true"
            continue
        if not eq:
            raise ctx.fail(node, f"{node.keyword}: --{name} needs a value (--{name}=...)")
        if kind == "list":
            existing = flags.setdefault(name, [])
            assert isinstance(existing, list)
            existing.append(value)
        elif name in flags:
            raise ctx.fail(node, f"{node.keyword}: --{name} given twice")
        else:
            flags[name] = value
    return flags, rest


def parse_trigger(text: str, path: str, line: int, escape: str = "\\") -> Instruction:
    """An ONBUILD trigger recorded in a base image, parsed as the instruction it is."""
    parsed = parse_text(text, path)
    if len(parsed.nodes) != 1:
        raise DockerfileError(
            path, line, f"ONBUILD trigger {text!r} of the base image is malformed"
        )
    node = parsed.nodes[0]
    node = Node(node.keyword, node.args, line, line, node.heredocs)
    if node.keyword in ("FROM", "ONBUILD", "MAINTAINER"):
        raise DockerfileError(path, line, f"{node.keyword} isn't allowed as an ONBUILD trigger")
    return _instruction(Ctx(path, escape), node, onbuild=True)
