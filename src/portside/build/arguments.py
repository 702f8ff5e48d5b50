"""The arguments of each Dockerfile instruction: forms, flags' values, mounts, durations.

`KINDS` maps a keyword to the function that reads its arguments into an `Instruction`
(words, pairs, mounts, health check), raising DockerfileError for anything malformed.
"""

from __future__ import annotations

import json
import re

from portside.build.dockerfile import Node
from portside.build.instructions import Ctx, Instruction
from portside.build.shellwords import split_words
from portside.numbers import is_digits

_CHMOD = re.compile(r"^[0-7]{3,4}$")

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _json_or_shell(ctx: Ctx, inst: Instruction, required: bool = False) -> None:
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


def _need(ctx: Ctx, inst: Instruction, exactly: int | None = None, least: int = 1) -> None:
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


def _words(ctx: Ctx, inst: Instruction) -> None:
    inst.words = split_words(inst.args, ctx.escape)


def _from(ctx: Ctx, inst: Instruction) -> None:
    _words(ctx, inst)
    _need(ctx, inst)


def _arg(ctx: Ctx, inst: Instruction) -> None:
    _words(ctx, inst)
    _need(ctx, inst)
    for word in inst.words:
        name, eq, default = word.partition("=")
        if not name or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
            raise ctx.fail(inst, f"ARG: invalid name {name!r}")
        inst.pairs.append((name, default if eq else None))


def _key_values(ctx: Ctx, inst: Instruction) -> None:
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


def _run(ctx: Ctx, inst: Instruction) -> None:
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


def _mount(ctx: Ctx, inst: Instruction, spec: str) -> dict[str, str]:
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
    for key in ("uid", "gid"):
        if key in mount and not is_digits(mount[key]):
            raise ctx.fail(inst, f"RUN --mount: {key} must be a number, not {mount[key]!r}")
    if "mode" in mount and not re.fullmatch(r"[0-7]{1,4}", mount["mode"]):
        raise ctx.fail(inst, f"RUN --mount: mode must be octal (like 0755), not {mount['mode']!r}")
    if mount["type"] == "cache" and mount.get("sharing", "shared") not in (
        "shared",
        "private",
        "locked",
    ):
        raise ctx.fail(inst, "RUN --mount: sharing must be shared, private or locked")
    return mount


def _cmd(ctx: Ctx, inst: Instruction) -> None:
    _json_or_shell(ctx, inst)
    if not inst.json_form and not inst.words:
        raise ctx.fail(inst, f"{inst.keyword} requires at least one argument")


def _shell(ctx: Ctx, inst: Instruction) -> None:
    _json_or_shell(ctx, inst, required=True)
    _need(ctx, inst)


def _one(ctx: Ctx, inst: Instruction) -> None:
    inst.words = [inst.args] if inst.args else []
    if inst.keyword != "WORKDIR":
        inst.words = split_words(inst.args, ctx.escape)
    _need(ctx, inst, exactly=1)


def _list(ctx: Ctx, inst: Instruction) -> None:
    _json_or_shell(ctx, inst)
    if not inst.json_form:
        _words(ctx, inst)
    _need(ctx, inst)


def _copy(ctx: Ctx, inst: Instruction) -> None:
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


def _healthcheck(ctx: Ctx, inst: Instruction) -> None:
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
        if not is_digits(retries):
            raise ctx.fail(inst, f"HEALTHCHECK: --retries must be a whole number, not {retries!r}")
        check["Retries"] = int(retries)
    inst.healthcheck = check


def _onbuild(ctx: Ctx, inst: Instruction) -> None:
    if not inst.args:
        raise ctx.fail(inst, "ONBUILD requires at least one argument")
    keyword, _, args = inst.args.partition(" ")
    keyword = keyword.upper()
    if keyword == "ONBUILD":
        raise ctx.fail(inst, "ONBUILD ONBUILD isn't allowed")
    if keyword in ("FROM", "MAINTAINER"):
        raise ctx.fail(inst, f"{keyword} isn't allowed as an ONBUILD trigger")
    from portside.build.instructions import _instruction

    node = Node(keyword, args.strip(), inst.line, inst.end_line)
    inst.trigger = _instruction(ctx, node, onbuild=True)


def _maintainer(ctx: Ctx, inst: Instruction) -> None:
    inst.words = [inst.args]
    _need(ctx, inst)
    if not inst.args:
        raise ctx.fail(inst, "MAINTAINER requires exactly one argument")


KINDS = {
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
