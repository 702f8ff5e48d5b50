"""`portside build`: build an image from a Dockerfile, as `docker build` does."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import click

from portside.errors import InvalidArgument
from portside.numbers import is_digits


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, eq, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"{what} {item!r}: expected KEY=VALUE")
        if not eq:  # `--build-arg NAME` takes the value from the environment, as Docker does
            if key not in os.environ:
                continue
            value = os.environ[key]
        out[key] = value
    return out


def _csv(text: str, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(","):
        key, eq, value = part.partition("=")
        if not eq or not key:
            raise InvalidArgument(f"{what} {text!r}: expected key=value[,key=value...]")
        out[key.strip()] = value.strip()
    return out


def _secrets(values: tuple[str, ...]) -> dict[str, Path | bytes]:
    """`--secret id=x,src=FILE` (or `,env=VAR`), as BuildKit takes them."""
    out: dict[str, Path | bytes] = {}
    for item in values:
        spec = _csv(item, "--secret")
        sid = spec.get("id")
        src = spec.get("src") or spec.get("source")
        if not sid:
            raise InvalidArgument(f"--secret {item!r}: needs id=<name>")
        if not src and spec.get("env"):
            if spec["env"] not in os.environ:
                raise InvalidArgument(
                    f"--secret id={sid}: environment variable {spec['env']} is not set"
                )
            out[sid] = os.environ[spec["env"]].encode()
            continue
        path = Path(src or sid).expanduser()
        if not path.is_file():
            raise InvalidArgument(f"--secret id={sid}: file {str(path)!r} not found")
        out[sid] = path
    return out


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("context", default=".", type=click.Path(file_okay=False))
@click.option("-t", "--tag", "tags", multiple=True, help="Name and optionally a tag (name:tag).")
@click.option(
    "-f",
    "--file",
    "dockerfile",
    help="The Dockerfile (default: CONTEXT/Dockerfile or Containerfile; - for stdin).",
)
@click.option("--target", help="The stage to build.")
@click.option("--build-arg", "build_args", multiple=True, help="Set a build-time variable.")
@click.option("--label", "labels", multiple=True, help="Set a label on the image.")
@click.option("--no-cache", is_flag=True, help="Do not use the cache.")
@click.option("--pull", is_flag=True, help="Always pull base images, even ones in the store.")
@click.option(
    "--network",
    type=click.Choice(["default", "none", "host"]),
    default="default",
    show_default=True,
    help="The network of RUN steps that do not set --network.",
)
@click.option("--iidfile", type=click.Path(dir_okay=False), help="Write the image id to this file.")
@click.option("--push", is_flag=True, help="Push every -t name once built.")
@click.option(
    "--cache-from",
    "cache_from",
    multiple=True,
    help="An image (pulled if needed) whose inline cache steps may be reused.",
)
@click.option(
    "--secret",
    "secrets",
    multiple=True,
    help="id=NAME,src=FILE or id=NAME,env=VAR for RUN --mount=type=secret.",
)
@click.option(
    "--output",
    "-o",
    "outputs",
    multiple=True,
    help="type=oci|docker,dest=FILE (dest=- for stdout) or type=local,dest=DIR.",
)
@click.option("--progress", default="auto", show_default=True, help="auto, plain, tty or quiet.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the image id.")
@click.option(
    "--reproducible",
    is_flag=True,
    help="Clamp timestamps to SOURCE_DATE_EPOCH (or the git commit time) for a stable digest.",
)
def build(
    context: str,
    tags: tuple[str, ...],
    dockerfile: str | None,
    target: str | None,
    build_args: tuple[str, ...],
    labels: tuple[str, ...],
    no_cache: bool,
    pull: bool,
    push: bool,
    cache_from: tuple[str, ...],
    network: str,
    iidfile: str | None,
    secrets: tuple[str, ...],
    outputs: tuple[str, ...],
    progress: str,
    quiet: bool,
    reproducible: bool,
) -> None:
    """Build an image from a Dockerfile and a context directory."""
    from portside.build.builder import BuildOptions
    from portside.build.builder import build as run_build
    from portside.build.output import Progress
    from portside.store.images import ImageStore

    epoch_text = os.environ.get("SOURCE_DATE_EPOCH", "")
    if epoch_text and not is_digits(epoch_text):
        raise InvalidArgument(f"SOURCE_DATE_EPOCH={epoch_text!r}: expected seconds since 1970")
    options = BuildOptions(
        context=Path(context),
        dockerfile=Path(dockerfile) if dockerfile and dockerfile != "-" else None,
        dockerfile_text=sys.stdin.read() if dockerfile == "-" else None,
        tags=list(tags),
        build_args=_pairs(build_args, "--build-arg"),
        target=target,
        no_cache=no_cache,
        reproducible=reproducible,
        epoch=int(epoch_text) if epoch_text else None,
        secrets=_secrets(secrets),
        labels=_pairs(labels, "--label"),
        outputs=[_csv(o, "--output") for o in outputs],
        pull=pull,
        push=push,
        cache_from=list(cache_from),
        network=network,
        admit_base=_policy_in_force(),
    )
    bar = Progress("quiet" if quiet else progress)
    store = ImageStore()
    try:
        result = run_build(store, options, bar)
    finally:
        store.db.close()
    image = result.image
    if not quiet:
        bar.note(f"built {image.short_id}: {result.steps} steps, {result.cached} cached")
        for name in image.tags:
            bar.note(f"naming to {name}")
        for out in options.outputs:
            bar.note(f"exported {out.get('type')} archive to {out.get('dest')}")
    if iidfile:
        Path(iidfile).write_text(image.id)
    # With an archive on standard output, the id goes to standard error instead.
    click.echo(image.id, err=any(o.get("dest") == "-" for o in options.outputs))


@click.group()
def builder() -> None:
    """Manage the build cache."""


@builder.command()
@click.option("-f", "--force", is_flag=True, help="Do not ask (accepted for docker compatibility).")
def prune(force: bool) -> None:
    """Remove the build cache: cached steps, file hashes and RUN cache mounts.

    Layers kept only for the cache are removed with it; `image prune` never touches them.
    """
    import shutil

    from portside.build.cache import CACHE_HOLDER, BuildCache
    from portside.cli.output import human_size
    from portside.config import root
    from portside.store.images import ImageStore

    cache = BuildCache(root())
    try:
        steps = cache.prune()
    finally:
        cache.close()
    store = ImageStore(root())
    store.release_content(CACHE_HOLDER)
    reclaimed = store.collect_garbage()
    mounts = root() / "build" / "cache-mounts"
    count = sum(1 for _ in mounts.iterdir()) if mounts.is_dir() else 0
    shutil.rmtree(mounts, ignore_errors=True)
    click.echo(f"Deleted {steps} cached steps and {count} cache mounts")
    click.echo(f"Total reclaimed space: {human_size(reclaimed)}")


def _policy_in_force() -> Callable[[str, str], None] | None:
    """The image policy for this in-process build's FROM images (PORTSIDE_POLICY, else
    ROOT/policy.json), as the daemon enforces it; None when there is none."""
    from portside import config
    from portside.engine.imagepolicy import blocking
    from portside.trust import enforce

    enforcer = enforce.in_force(config.root())
    return blocking(enforcer) if enforcer else None
