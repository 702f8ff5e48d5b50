"""Which stages a build needs: the target and, transitively, the stages it reads from.

A stage depends on another when it starts `FROM` it, copies `--from` it, or mounts it with
`RUN --mount=from=`. Only those stages are built, in Dockerfile order.
"""

from __future__ import annotations

from portside.build.errors import DockerfileError
from portside.build.instructions import Dockerfile, Stage
from portside.build.shellwords import SubstitutionError, expand
from portside.oci.model import host_platform


def platform_args() -> dict[str, str]:
    """BuildKit's automatic platform ARGs (TARGETPLATFORM, BUILDARCH, ...) for this host."""
    p = host_platform()
    full = f"{p.os}/{p.architecture}" + (f"/{p.variant}" if p.variant else "")
    out: dict[str, str] = {}
    for prefix in ("BUILD", "TARGET"):
        out.update(
            {
                f"{prefix}PLATFORM": full,
                f"{prefix}OS": p.os,
                f"{prefix}ARCH": p.architecture,
                f"{prefix}VARIANT": p.variant,
            }
        )
    return out


def base_of(df: Dockerfile, stage: Stage, meta: dict[str, str]) -> str:
    """The FROM argument with global ARGs expanded."""
    try:
        base = expand(stage.base, meta, df.escape)
    except SubstitutionError as exc:
        raise DockerfileError(df.path, stage.line, f"FROM: {exc}") from None
    if not base:
        raise DockerfileError(
            df.path, stage.line, f"FROM {stage.base}: the base image name is empty"
        )
    return base


def target_stage(df: Dockerfile, target: str | None) -> Stage:
    if not target:
        return df.stages[-1]
    stage = df.stage(target)
    if stage is None:
        names = ", ".join(s.name for s in df.stages if s.name) or "none"
        raise DockerfileError(
            df.path, 0, f"target stage {target!r} could not be found (stages: {names})"
        )
    return stage


def needed(df: Dockerfile, target: Stage, meta: dict[str, str]) -> list[Stage]:
    """The stages to build for `target`, in order."""
    want: set[int] = set()
    todo = [target]
    while todo:
        stage = todo.pop()
        if stage.index in want:
            continue
        want.add(stage.index)
        refs = [base_of(df, stage, meta)]
        for inst in stage.instructions:
            src = inst.flags.get("from")
            if isinstance(src, str):
                refs.append(_expand_ref(df, src, meta))
            for mount in inst.mounts:
                if "from" in mount:
                    refs.append(_expand_ref(df, mount["from"], meta))
        for ref in refs:
            dep = df.stage(ref)
            if dep is None:
                continue
            if dep.index >= stage.index:
                continue  # not a stage built before this one: an image of that name
            todo.append(dep)
    return [s for s in df.stages if s.index in want]


def _expand_ref(df: Dockerfile, ref: str, meta: dict[str, str]) -> str:
    try:
        return expand(ref, meta, df.escape)
    except SubstitutionError:
        return ref
