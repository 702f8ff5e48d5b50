"""Config-only instructions: what ENV, ARG, LABEL, CMD, ENTRYPOINT, SHELL, WORKDIR, USER,
EXPOSE, VOLUME, STOPSIGNAL, HEALTHCHECK, ONBUILD and MAINTAINER do to the image config."""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from portside.build.errors import BuildError
from portside.build.instructions import Instruction
from portside.build.state import StageState
from portside.numbers import is_digits

if TYPE_CHECKING:
    from portside.build.executor import BuildRun

_SIGNALS = frozenset(
    [
        "HUP",
        "INT",
        "QUIT",
        "ILL",
        "TRAP",
        "ABRT",
        "BUS",
        "FPE",
        "KILL",
        "USR1",
        "SEGV",
        "USR2",
        "PIPE",
        "ALRM",
        "TERM",
        "STKFLT",
        "CHLD",
        "CONT",
        "STOP",
        "TSTP",
        "TTIN",
        "TTOU",
        "URG",
        "XCPU",
        "XFSZ",
        "VTALRM",
        "PROF",
        "WINCH",
        "IO",
        "PWR",
        "SYS",
        "RTMIN",
        "RTMAX",
    ]
)


def _command(state: StageState, inst: Instruction) -> list[str]:
    return list(inst.words) if inst.json_form else [*state.shell, inst.words[0]]


def apply_config(run: BuildRun, state: StageState, inst: Instruction, env: dict[str, str]) -> None:
    """The effect of a config-only instruction (and of WORKDIR) on the stage's image config."""
    kw, cfg = inst.keyword, state.config
    if kw == "ENV":
        # Every value of one ENV line sees the environment from before the line.
        for key, value in [
            (run.expand(inst, k, env), run.expand(inst, v or "", env)) for k, v in inst.pairs
        ]:
            if not key:
                raise BuildError(run.path, inst.line, "ENV names can not be blank")
            state.set_env(key, value)
    elif kw == "ARG":
        for name, default in inst.pairs:
            if name in run.build_args:
                state.args[name] = run.build_args[name]
                run.used_args.add(name)
            elif default is not None:
                state.args[name] = run.expand(inst, default, {**env, **state.args})
            elif name in run.meta_args:
                state.args[name] = run.meta_args[name]
    elif kw == "LABEL":
        labels = dict(cfg.get("Labels") or {})
        for k, v in inst.pairs:
            labels[run.expand(inst, k, env)] = run.expand(inst, v or "", env)
        cfg["Labels"] = labels
    elif kw in ("CMD", "ENTRYPOINT"):
        cfg[kw.capitalize() if kw == "CMD" else "Entrypoint"] = _command(state, inst)
        if kw == "ENTRYPOINT" and state.cmd_from_base:
            cfg.pop("Cmd", None)  # Docker: ENTRYPOINT resets a CMD inherited from the base
        if kw == "CMD":
            state.cmd_from_base = False
    elif kw == "SHELL":
        cfg["Shell"] = list(inst.words)
    elif kw == "WORKDIR":
        path = run.expand(inst, inst.words[0], env)
        cfg["WorkingDir"] = posixpath.normpath(posixpath.join(state.workdir, path))
    elif kw == "USER":
        user = run.expand(inst, inst.words[0], env)
        if not user:
            raise BuildError(run.path, inst.line, "USER: the user is empty")
        cfg["User"] = user
    elif kw == "EXPOSE":
        ports = dict(cfg.get("ExposedPorts") or {})
        for word in inst.words:
            for port in run.expand_words(inst, word, env):
                ports.update({p: {} for p in _ports(run, inst, port)})
        cfg["ExposedPorts"] = ports
    elif kw == "VOLUME":
        volumes = dict(cfg.get("Volumes") or {})
        for word in inst.words:
            path = run.expand(inst, word, env) if not inst.json_form else word
            if not path.strip():
                raise BuildError(run.path, inst.line, "VOLUME specified can not be an empty string")
            volumes[path] = {}
        cfg["Volumes"] = volumes
    elif kw == "STOPSIGNAL":
        sig = run.expand(inst, inst.words[0], env)
        if not (
            is_digits(sig)
            or sig.upper().removeprefix("SIG") in _SIGNALS
            or sig.upper().startswith(("SIGRTMIN+", "SIGRTMAX-"))
        ):
            raise BuildError(run.path, inst.line, f"STOPSIGNAL: invalid signal {sig!r}")
        cfg["StopSignal"] = sig
    elif kw == "HEALTHCHECK":
        cfg["Healthcheck"] = dict(inst.healthcheck or {})
    elif kw == "ONBUILD":
        cfg["OnBuild"] = [*(cfg.get("OnBuild") or []), inst.args]
    elif kw == "MAINTAINER":
        labels = dict(cfg.get("Labels") or {})
        labels["maintainer"] = inst.args
        cfg["Labels"] = labels


def _ports(run: BuildRun, inst: Instruction, text: str) -> list[str]:
    port, _, proto = text.partition("/")
    proto = (proto or "tcp").lower()
    low, _, high = port.partition("-")
    if proto not in ("tcp", "udp", "sctp") or not is_digits(low) or (high and not is_digits(high)):
        raise BuildError(run.path, inst.line, f"EXPOSE: invalid port {text!r} (e.g. 80 or 53/udp)")
    first, last = int(low), int(high or low)
    if not (0 < first <= last <= 65535):
        raise BuildError(run.path, inst.line, f"EXPOSE: invalid port range {text!r}")
    return [f"{p}/{proto}" for p in range(first, last + 1)]
