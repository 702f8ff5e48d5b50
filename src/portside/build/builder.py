"""`portside build`: from a context and a Dockerfile to an image in the store (or an archive).

The pipeline: read and parse the Dockerfile, resolve global ARGs, pick the target stage and
the stages it needs, build each (executor), then write the image with its traceability
labels and tags, and any `--output` archive.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from portside.build import dockerignore, gitinfo, remote
from portside.build.cache import BuildCache, step_key
from portside.build.context import BuildContext
from portside.build.errors import BuildError
from portside.build.executor import BuildRun
from portside.build.graph import base_of, needed, target_stage
from portside.build.instructions import parse
from portside.build.output import Progress
from portside.errors import InvalidArgument
from portside.oci import reference as refs
from portside.store.images import Image, ImageStore

DOCKERFILE_NAMES = ("Dockerfile", "Containerfile")


@dataclass
class BuildOptions:
    context: Path
    dockerfile: Path | None = None
    dockerfile_text: str | None = None  # `-f -`: the Dockerfile came on stdin
    dockerfile_name: str | None = None  # how messages name `dockerfile` (default: as given)
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    no_cache: bool = False
    reproducible: bool = False
    epoch: int | None = None  # SOURCE_DATE_EPOCH
    secrets: dict[str, Path | bytes] = field(default_factory=dict)  # id -> file or value
    labels: dict[str, str] = field(default_factory=dict)
    outputs: list[dict[str, str]] = field(default_factory=list)
    pull: bool = False  # pull every base image, even one already in the store
    push: bool = False  # push every tag once built
    cache_from: list[str] = field(default_factory=list)
    network: str = "default"  # for RUN steps without --network
    # The daemon builds contexts a client sent, unpacked into a temporary directory: it
    # never runs `git` in them (a hostile .git/config can name commands git would run),
    # and does not record file hashes by a path that is gone after the build.
    git_labels: bool = True
    remember_hashes: bool = True
    # The image policy (trust layer), asked with (reference, digest) of each FROM image
    # before a step uses it; it raises to refuse. None admits every base.
    admit_base: Callable[[str, str], None] | None = None


@dataclass
class BuildResult:
    image: Image
    stages: list[str]
    steps: int
    cached: int


def find_dockerfile(context: Path, given: Path | None) -> tuple[Path, str]:
    """The Dockerfile to use and how to name it in messages."""
    if given is not None:
        path = given if given.is_absolute() or given.exists() else context / given
        if not path.is_file():
            raise InvalidArgument(f"Dockerfile {str(given)!r} not found")
        return path, str(given)
    for name in DOCKERFILE_NAMES:
        if (context / name).is_file():
            return context / name, name
    raise InvalidArgument(f"no Dockerfile or Containerfile in {context} (use -f to name one)")


def build(store: ImageStore, options: BuildOptions, progress: Progress) -> BuildResult:
    context = options.context
    if not context.is_dir():
        raise InvalidArgument(f"build context {str(context)!r} is not a directory")
    tags = [str(refs.parse_tagged(t)) for t in options.tags]  # bad names fail before building
    if options.push and not tags:
        raise InvalidArgument("--push needs at least one -t name to push to")
    path: Path | None = None
    if options.dockerfile_text is not None:
        text, shown = options.dockerfile_text, "Dockerfile"
    else:
        path, shown = find_dockerfile(context, options.dockerfile)
        shown = options.dockerfile_name or shown
        try:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
        except OSError as exc:
            raise InvalidArgument(f"cannot read {shown}: {exc.strerror}") from None
    dockerfile = parse(text, shown)
    git = (
        gitinfo.describe(context, commit_time=options.reproducible and options.epoch is None)
        if options.git_labels
        else None
    )
    epoch = options.epoch
    if epoch is None and options.reproducible:
        epoch = git.commit_time if git else 0
    cache = BuildCache(store.root)
    scratch = store.root / "tmp"
    scratch.mkdir(exist_ok=True, mode=0o700)
    tmp = Path(tempfile.mkdtemp(dir=scratch, prefix="build-"))
    run: BuildRun | None = None
    try:
        ctx = BuildContext(
            context, cache, _ignore_rules(context, path), remember=options.remember_hashes
        )
        for ref in options.cache_from:
            remote.import_cache(store, cache, ref, progress)
        with store.importing():
            run = BuildRun(
                store,
                cache,
                ctx,
                dockerfile,
                progress,
                tmp,
                build_args=dict(options.build_args),
                no_cache=options.no_cache,
                epoch=epoch,
                secrets=options.secrets,
                pull=options.pull,
                network=options.network,
                admit_base=options.admit_base,
            )
            target = target_stage(dockerfile, options.target)
            stages = needed(dockerfile, target, run.meta_args)
            progress.plan(sum(1 + len(stage.instructions) for stage in stages))
            for stage in stages:
                run.build_stage(stage, base_of(dockerfile, stage, run.meta_args))
            state = run.results[target.index]
            image = _write_image(store, state, tags, options, git, epoch)
        unused = sorted(set(options.build_args) - run.used_args - _declared(dockerfile))
        if unused:
            progress.note(
                f"warning: build-args not consumed by the Dockerfile: {', '.join(unused)}"
            )
    finally:
        if run is not None:
            store.release(run.holder)
            if run.used_runtime:
                _remove_cgroup_parent(run.cgroup_parent)
        cache.close()
        shutil.rmtree(tmp, ignore_errors=True)
    for out in options.outputs:
        _export(store, image, out)
    if options.push:
        for tag in tags:
            remote.push(store, tag, progress)
    done = progress.statuses.get("DONE", 0)
    cached = progress.statuses.get("CACHED", 0)
    return BuildResult(image, [s.display for s in stages], done + cached, cached)


def _remove_cgroup_parent(parent: str) -> None:
    """Leave no cgroup behind: the parent of RUN containers goes when no build uses it
    (rmdir fails on a cgroup that still has children, so a concurrent build keeps it)."""
    import contextlib

    from portside.runtime import cgroups

    for hierarchy in cgroups.detect().hierarchies():
        with contextlib.suppress(OSError):
            os.rmdir(Path(hierarchy) / parent)


def _ignore_rules(context: Path, dockerfile: Path | None) -> dockerignore.Matcher:
    """`<Dockerfile>.dockerignore` beside the Dockerfile wins over the context's .dockerignore."""
    if dockerfile is not None:
        specific = dockerfile.parent / (dockerfile.name + ".dockerignore")
        if specific.is_file():
            return dockerignore.Matcher.for_context(context, specific)
    return dockerignore.Matcher.for_context(context)


def _declared(dockerfile: object) -> set[str]:
    from portside.build.instructions import Dockerfile

    assert isinstance(dockerfile, Dockerfile)
    names = {n for inst in dockerfile.global_args for n, _ in inst.pairs}
    for stage in dockerfile.stages:
        names |= {n for inst in stage.instructions if inst.keyword == "ARG" for n, _ in inst.pairs}
    return names


def _write_image(
    store: ImageStore,
    state: object,
    tags: list[str],
    options: BuildOptions,
    git: gitinfo.GitInfo | None,
    epoch: int | None,
) -> Image:
    from portside.build.state import StageState
    from portside.store.imagebuilder import new_image, rfc3339
    from portside.store.layers import LayerResult

    assert isinstance(state, StageState)
    created = rfc3339(state.created if epoch is None else min(state.created, epoch))
    config = dict(state.config)
    labels = dict(config.get("Labels") or {})
    extra = dict(git.labels(created)) if git else {}
    for k, v in extra.items():
        labels.setdefault(k, v)
    labels.update(options.labels)
    if labels:
        config["Labels"] = labels
    layers = [LayerResult(lr.digest, lr.size, lr.diff_id, lr.media_type, 0) for lr in state.layers]
    annotations = {k: v for k, v in extra.items() if k != gitinfo.DIRTY}
    annotations[remote.CACHE_ANNOTATION] = remote.cache_annotation(state.steps)
    if state.base_image:  # image-spec annotations.md: the image this one is built on
        annotations["org.opencontainers.image.base.name"] = state.base_image[0]
        annotations["org.opencontainers.image.base.digest"] = state.base_image[1]
    return new_image(
        store, layers, config, state.history, annotations=annotations, tags=tags, created=created
    )


def _export(store: ImageStore, image: Image, out: dict[str, str]) -> None:
    kind = out.get("type", "")
    dest = out.get("dest", "")
    if kind not in ("oci", "docker", "local"):
        raise InvalidArgument(f"--output type={kind or '?'}: use type=oci, docker or local")
    if not dest:
        raise InvalidArgument(f"--output type={kind} needs dest=<file or directory>")
    if kind == "local":
        _export_local(store, image, Path(dest))
        return
    from portside.store import archive

    names = list(image.tags) or [image.id]
    archive.save(
        store, names, Path(dest) if dest != "-" else os.fdopen(1, "wb", closefd=False), format=kind
    )


def _export_local(store: ImageStore, image: Image, dest: Path) -> None:
    """`--output type=local,dest=DIR`: the image's merged filesystem, written into DIR."""
    from portside.build.stagefs import LayerRef, StageFS

    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InvalidArgument(f"--output type=local: {dest} exists and is not an empty directory")
    manifest = store.manifest(image)
    diff_ids = store.config(image).diff_ids
    layers = [
        LayerRef(d.digest, d.size, diff, d.media_type)
        for d, diff in zip(manifest.layers, diff_ids, strict=True)
    ]
    dest.mkdir(parents=True, exist_ok=True)
    StageFS(store.content, layers).export("", dest)


__all__ = ["BuildError", "BuildOptions", "BuildResult", "build", "step_key"]
