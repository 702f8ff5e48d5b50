"""The Dockerfile instructions as typed values, with their flags checked.

`parse(text, path)` turns a Dockerfile into a `Dockerfile`: global ARGs and stages, each a
list of instructions. Values are kept as written; variables are expanded when a stage is
built (they depend on build args and ENV). Any malformed input raises DockerfileError.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field

from portside.build.dockerfile import Heredoc, Node, parse_text
from portside.build.errors import DockerfileError
from portside.build.shellwords import split_words

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
_CHMOD = re.compile(r"^[0-7]{3,4}$")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


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
        if key.isdigit() and int(key) < len(self.stages):
            return self.stages[int(key)]
        return None


class _Ctx:
    def __init__(self, path: str, escape: str) -> None:
        self.path = path
        self.escape = escape

    def fail(self, node: Node | Instruction, message: str) -> DockerfileError:
        return DockerfileError(self.path, node.line, message)


def parse(text: str, path: str = "Dockerfile") -> Dockerfile:
    """Parse a whole Dockerfile; raises DockerfileError on anything malformed."""
    parsed = parse_text(text, path)
    ctx = _Ctx(path, parsed.escape)
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


def _stage(ctx: _Ctx, inst: Instruction, index: int) -> Stage:
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


def _instruction(ctx: _Ctx, node: Node, onbuild: bool = False) -> Instruction:
    if node.keyword not in KEYWORDS:
        close = difflib.get_close_matches(node.keyword, KEYWORDS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        shown = node.keyword if len(node.keyword) <= 40 else node.keyword[:40] + "..."
        raise ctx.fail(node, f"unknown instruction: {shown}{hint}")
    flags, rest = _flags(ctx, node)
    inst = Instruction(
        node.keyword, node.line, node.end_line, node.original, rest, flags, node.heredocs
    )
    _KINDS[node.keyword](ctx, inst)
    return inst


def _flags(ctx: _Ctx, node: Node) -> tuple[dict[str, object], str]:
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


def _json_or_shell(ctx: _Ctx, inst: Instruction, required: bool = False) -> None:
    text = inst.args
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError as exc:
            value = None
            if required or text.startswith('["'):
                raise ctx.fail(
                    inst, f"{inst.keyword}: invalid JSON array ({exc.args[0].split(':')[0]})"
                ) from None
        if value is not None:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ctx.fail(inst, f"{inst.keyword}: the JSON form must be an array of strings")
            inst.words, inst.json_form = value, True
            return
    if required:
        raise ctx.fail(
            inst,
            f'{inst.keyword} requires the arguments to be in JSON form, e.g. ["/bin/sh", "-c"]',
        )
    inst.words = [text] if text else []


def _need(ctx: _Ctx, inst: Instruction, exactly: int | None = None, least: int = 1) -> None:
    n = len(inst.words)
    if exactly is not None and n != exactly:
        raise ctx.fail(
            inst,
            f"{inst.keyword} requires exactly {'one argument' if exactly == 1 else f'{exactly} arguments'}",
        )
    if n < least:
        raise ctx.fail(
            inst,
            f"{inst.keyword} requires at least {'one argument' if least == 1 else f'{least} arguments'}",
        )


def _words(ctx: _Ctx, inst: Instruction) -> None:
    inst.words = split_words(inst.args, ctx.escape)


def _from(ctx: _Ctx, inst: Instruction) -> None:
    _words(ctx, inst)
    _need(ctx, inst)


def _arg(ctx: _Ctx, inst: Instruction) -> None:
    _words(ctx, inst)
    _need(ctx, inst)
    for word in inst.words:
        name, eq, default = word.partition("=")
        if not name or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
            raise ctx.fail(inst, f"ARG: invalid name {name!r}")
        inst.pairs.append((name, default if eq else None))


def _key_values(ctx: _Ctx, inst: Instruction) -> None:
    """ENV/LABEL: `k=v k2="v 2"`, or the legacy `k v w` (one pair, value = rest of line)."""
    words = split_words(inst.args, ctx.escape)
    if not words:
        raise ctx.fail(inst, f"{inst.keyword} requires at least one argument")
    if "=" not in words[0] or words[0].startswith("="):
        if words[0].startswith("="):
            raise ctx.fail(inst, f"{inst.keyword} names can not be blank")
        key, _, value = inst.args.partition(" ")
        if "\t" in key:
            key, _, value = inst.args.partition("\t")
        if not value.strip():
            raise ctx.fail(inst, f"{inst.keyword} {key}: missing value (write {key}=value)")
        inst.pairs.append((key, value.strip()))
        return
    for word in words:
        key, eq, value = word.partition("=")
        if not eq:
            raise ctx.fail(inst, f"{inst.keyword}: can't find = in {word!r}; write name=value")
        if not key:
            raise ctx.fail(inst, f"{inst.keyword} names can not be blank")
        inst.pairs.append((key, value))


def _run(ctx: _Ctx, inst: Instruction) -> None:
    _json_or_shell(ctx, inst)
    if not inst.words and not inst.heredocs:
        raise ctx.fail(inst, "RUN requires at least one argument")
    network = inst.flags.get("network")
    if network is not None and network not in ("default", "none", "host"):
        raise ctx.fail(inst, f"RUN: unsupported network mode {network!r} (default, none or host)")
    for spec in inst.flags.get("mount", []):  # type: ignore[attr-defined]
        inst.mounts.append(_mount(ctx, inst, str(spec)))


_MOUNT_KEYS = {
    "type",
    "target",
    "dst",
    "destination",
    "source",
    "src",
    "from",
    "id",
    "readonly",
    "ro",
    "rw",
    "readwrite",
    "mode",
    "uid",
    "gid",
    "required",
    "sharing",
    "size",
    "env",
}


def _mount(ctx: _Ctx, inst: Instruction, spec: str) -> dict[str, str]:
    mount: dict[str, str] = {"type": "bind"}
    for part in spec.split(","):
        key, eq, value = part.partition("=")
        key = key.strip().lower()
        if key not in _MOUNT_KEYS:
            raise ctx.fail(inst, f"RUN --mount: unknown option {key!r}")
        key = {"dst": "target", "destination": "target", "src": "source", "ro": "readonly"}.get(
            key, key
        )
        mount[key] = value if eq else "true"
    if mount["type"] not in ("bind", "cache", "secret", "tmpfs", "ssh"):
        raise ctx.fail(
            inst,
            f"RUN --mount: unsupported mount type {mount['type']!r} (bind, cache, secret, tmpfs, ssh)",
        )
    if mount["type"] == "secret":
        if "id" not in mount and "target" not in mount:
            raise ctx.fail(inst, "RUN --mount=type=secret needs id=<secret id>")
        mount.setdefault("id", mount.get("target", "").rsplit("/", 1)[-1])
        mount.setdefault("target", f"/run/secrets/{mount['id']}")
    elif "target" not in mount:
        raise ctx.fail(
            inst, f"RUN --mount=type={mount['type']} needs target=<path in the container>"
        )
    if mount["type"] == "cache" and mount.get("sharing", "shared") not in (
        "shared",
        "private",
        "locked",
    ):
        raise ctx.fail(inst, "RUN --mount: sharing must be shared, private or locked")
    return mount


def _cmd(ctx: _Ctx, inst: Instruction) -> None:
    _json_or_shell(ctx, inst)
    if not inst.json_form and not inst.words:
        raise ctx.fail(inst, f"{inst.keyword} requires at least one argument")


def _shell(ctx: _Ctx, inst: Instruction) -> None:
    _json_or_shell(ctx, inst, required=True)
    _need(ctx, inst)


def _one(ctx: _Ctx, inst: Instruction) -> None:
    inst.words = [inst.args] if inst.args else []
    if inst.keyword != "WORKDIR":
        inst.words = split_words(inst.args, ctx.escape)
    _need(ctx, inst, exactly=1)


def _list(ctx: _Ctx, inst: Instruction) -> None:
    _json_or_shell(ctx, inst)
    if not inst.json_form:
        _words(ctx, inst)
    _need(ctx, inst)


def _copy(ctx: _Ctx, inst: Instruction) -> None:
    _json_or_shell(ctx, inst)
    if not inst.json_form:
        _words(ctx, inst)
    heredoc_names = {h.name for h in inst.heredocs}
    if inst.heredocs:
        inst.words = [w for w in inst.words if not re.match(r"^\d*<<-?[\"']?[A-Za-z_]", w)]
    if len(inst.words) + len(heredoc_names) < 2 or not inst.words:
        raise ctx.fail(
            inst, f"{inst.keyword} requires at least two arguments: a source and a destination"
        )
    chmod = inst.flags.get("chmod")
    if chmod is not None and not _CHMOD.match(str(chmod)) and "$" not in str(chmod):
        raise ctx.fail(
            inst, f"{inst.keyword}: invalid --chmod={chmod}: use an octal mode like 0755"
        )
    if inst.keyword == "COPY" and inst.flags.get("from") == "":
        raise ctx.fail(inst, "COPY: --from needs a stage name, index or image")


def duration(text: str) -> float | None:
    """A Go duration (`30s`, `1m30s`, `500ms`) in seconds, or None when malformed."""
    if not text or _DURATION.sub("", text) != "":
        return None
    return sum(float(v) * _UNITS[u] for v, u in _DURATION.findall(text))


def _healthcheck(ctx: _Ctx, inst: Instruction) -> None:
    kind, _, rest = inst.args.partition(" ")
    kind = kind.upper()
    if not kind:
        raise ctx.fail(inst, "HEALTHCHECK requires at least one argument")
    if kind == "NONE":
        if rest.strip() or inst.flags:
            raise ctx.fail(inst, "HEALTHCHECK NONE takes no other arguments or flags")
        inst.healthcheck = {"Test": ["NONE"]}
        return
    if kind != "CMD":
        raise ctx.fail(inst, f"unknown type {kind!r} in HEALTHCHECK (try CMD)")
    sub = Instruction("CMD", inst.line, inst.end_line, inst.original, rest.strip())
    _cmd(ctx, sub)
    test = ["CMD", *sub.words] if sub.json_form else ["CMD-SHELL", sub.words[0]]
    check: dict[str, object] = {"Test": test}
    for flag, key in (
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start-period", "StartPeriod"),
        ("start-interval", "StartInterval"),
    ):
        if flag in inst.flags:
            seconds = duration(str(inst.flags[flag]))
            if seconds is None:
                raise ctx.fail(
                    inst,
                    f"HEALTHCHECK: invalid --{flag}={inst.flags[flag]}: use a duration like 30s",
                )
            if 0 < seconds < 0.001:
                raise ctx.fail(inst, f"HEALTHCHECK: --{flag} cannot be less than 1ms")
            check[key] = int(seconds * 1e9)
    if "retries" in inst.flags:
        retries = str(inst.flags["retries"])
        if not retries.isdigit():
            raise ctx.fail(inst, f"HEALTHCHECK: --retries must be a whole number, not {retries!r}")
        check["Retries"] = int(retries)
    inst.healthcheck = check


def _onbuild(ctx: _Ctx, inst: Instruction) -> None:
    if not inst.args:
        raise ctx.fail(inst, "ONBUILD requires at least one argument")
    keyword, _, args = inst.args.partition(" ")
    keyword = keyword.upper()
    if keyword == "ONBUILD":
        raise ctx.fail(inst, "ONBUILD ONBUILD isn't allowed")
    if keyword in ("FROM", "MAINTAINER"):
        raise ctx.fail(inst, f"{keyword} isn't allowed as an ONBUILD trigger")
    node = Node(keyword, args.strip(), inst.line, inst.end_line)
    inst.trigger = _instruction(ctx, node, onbuild=True)


def _maintainer(ctx: _Ctx, inst: Instruction) -> None:
    inst.words = [inst.args]
    _need(ctx, inst)
    if not inst.args:
        raise ctx.fail(inst, "MAINTAINER requires exactly one argument")


_KINDS = {
    "FROM": _from,
    "ARG": _arg,
    "ENV": _key_values,
    "LABEL": _key_values,
    "RUN": _run,
    "CMD": _cmd,
    "ENTRYPOINT": _cmd,
    "SHELL": _shell,
    "WORKDIR": _one,
    "USER": _one,
    "STOPSIGNAL": _one,
    "EXPOSE": _list,
    "VOLUME": _list,
    "COPY": _copy,
    "ADD": _copy,
    "HEALTHCHECK": _healthcheck,
    "ONBUILD": _onbuild,
    "MAINTAINER": _maintainer,
}


def parse_trigger(text: str, path: str, line: int, escape: str = "\\") -> Instruction:
    """An ONBUILD trigger recorded in a base image, parsed as the instruction it is."""
    parsed = parse_text(text, path)
    if len(parsed.nodes) != 1:
        raise DockerfileError(path, line, f"ONBUILD trigger {text!r} of the base image is malformed")
    node = parsed.nodes[0]
    node = Node(node.keyword, node.args, line, line, node.heredocs)
    if node.keyword in ("FROM", "ONBUILD", "MAINTAINER"):
        raise DockerfileError(path, line, f"{node.keyword} isn't allowed as an ONBUILD trigger")
    return _instruction(_Ctx(path, escape), node, onbuild=True)
