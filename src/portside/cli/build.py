"""`portside build`: build an image from a Dockerfile, as `docker build` does."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING

import click

from portside.errors import InvalidArgument
from portside.numbers import is_digits

if TYPE_CHECKING:
    from portside.engine.interface import BuildGit, EngineAPI


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


def _secrets(values: tuple[str, ...]) -> dict[str, bytes]:
    """`--secret id=x,src=FILE` (or `,env=VAR`), as BuildKit takes them: read here, sent in
    the request's body, never as a path the daemon would read."""
    out: dict[str, bytes] = {}
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
        try:
            out[sid] = path.read_bytes()
        except OSError as exc:
            raise InvalidArgument(f"--secret id={sid}: cannot read {path}: {exc.strerror}") from None
    return out


_OUTPUTS = ("oci", "docker", "tar", "local")


def _outputs(values: tuple[str, ...]) -> list[dict[str, str]]:
    """`--output type=...,dest=...`, checked before anything is built."""
    outs = []
    for item in values:
        out = _csv(item, "--output")
        kind, dest = out.get("type", ""), out.get("dest", "")
        if kind not in _OUTPUTS:
            raise InvalidArgument(f"--output type={kind or '?'}: use type=oci, docker, tar or local")
        if not dest:
            raise InvalidArgument(f"--output type={kind} needs dest=<file or directory>")
        if kind == "local":
            there = Path(dest)
            if there.exists() and (not there.is_dir() or any(there.iterdir())):
                raise InvalidArgument(
                    f"--output type=local: {dest} exists and is not an empty directory")
        elif dest != "-" and Path(dest).is_dir():
            raise InvalidArgument(f"--output type={kind}: {dest} is a directory (name a file)")
        outs.append(out)
    if sum(o["dest"] == "-" for o in outs) > 1:
        raise InvalidArgument("--output: only one output can go to standard output (dest=-)")
    return outs


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
@click.option("--platform", help="The platform to build for (only the host's: no emulation).")
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
    help="type=oci|docker|tar,dest=FILE (dest=- for stdout) or type=local,dest=DIR.",
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
    platform: str | None,
    network: str,
    iidfile: str | None,
    secrets: tuple[str, ...],
    outputs: tuple[str, ...],
    progress: str,
    quiet: bool,
    reproducible: bool,
) -> None:
    """Build an image from a Dockerfile and a context directory (in the daemon)."""
    from portside.build.output import Progress
    from portside.cli.engine import engine
    from portside.client.buildcontext import ContextStream, plan
    from portside.engine.interface import BuildOptions
    from portside.oci import reference as refs

    epoch_text = os.environ.get("SOURCE_DATE_EPOCH", "")
    if epoch_text and not is_digits(epoch_text):
        raise InvalidArgument(f"SOURCE_DATE_EPOCH={epoch_text!r}: expected seconds since 1970")
    names = [str(refs.parse_tagged(t)) for t in tags]  # bad names fail before building
    if push and not names:
        raise InvalidArgument("--push needs at least one -t name to push to")
    outs = _outputs(outputs)
    epoch = int(epoch_text) if epoch_text else None
    where = Path(context)
    sent = plan(where, dockerfile if dockerfile != "-" else None,
                sys.stdin.read() if dockerfile == "-" else None)
    options = BuildOptions(
        tags=names,
        dockerfile=sent.dockerfile,
        dockerfile_name="Dockerfile" if dockerfile == "-" else dockerfile or "",
        build_args=_pairs(build_args, "--build-arg"),
        target=target or "",
        labels=_pairs(labels, "--label"),
        no_cache=no_cache,
        pull=pull,
        cache_from=list(cache_from),
        platform=platform or "",
        network_mode=network,
        secrets=_secrets(secrets),
        push=push,
        reproducible=reproducible,
        epoch=epoch,
        git=_git(where, reproducible and epoch is None),
    )
    bar = Progress("quiet" if quiet else progress)
    api = engine()
    upload = ContextStream(sent)
    try:
        image = api.images.build(upload, options, bar.note, steps=bar)
    finally:
        upload.close()
    if not quiet:
        done, cached = bar.statuses.get("DONE", 0), bar.statuses.get("CACHED", 0)
        bar.note(f"built {image.removeprefix('sha256:')[:12]}: {done + cached} steps, {cached} cached")
        for name in names:
            bar.note(f"naming to {name}")
    for out in outs:
        _export(api, image, names, out)
        if not quiet:
            bar.note(f"exported {out['type']} to {out['dest']}")
    if iidfile:
        Path(iidfile).write_text(image)
    # With an archive on standard output, the id goes to standard error instead.
    click.echo(image, err=any(o.get("dest") == "-" for o in outs))


def _git(context: Path, commit_time: bool) -> BuildGit | None:
    """What git says of the client's checkout (the daemon never runs git in a context)."""
    from portside.build.gitinfo import describe
    from portside.engine.interface import BuildGit

    info = describe(context, commit_time=commit_time)
    return BuildGit(info.revision, info.source, info.dirty, info.commit_time) if info else None


def _export(api: EngineAPI, image: str, names: list[str], out: dict[str, str]) -> None:
    """An `--output`, written here from what the daemon streams: an image archive (oci,
    docker), or the image's filesystem as a tar or into a directory (tar, local)."""
    import contextlib
    import tempfile

    kind, dest = out["type"], out["dest"]
    if kind == "local":
        _export_local(api, image, Path(dest))
        return

    def write(target: IO[bytes]) -> None:
        if kind in ("oci", "docker"):
            api.images.save(names or [image], target, format=kind)
        else:
            _filesystem(api, image, target)
        target.flush()

    if dest == "-":
        write(sys.stdout.buffer)
        return
    # A file appears whole or not at all: written beside it, renamed when complete.
    path = Path(dest).absolute()
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(partial, 0o644)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise


def _filesystem(api: EngineAPI, image: str, out: IO[bytes]) -> None:
    """The image's merged filesystem as a tar: the export of a container made from it (never
    started, removed after)."""
    from portside.engine.interface import CreateOptions

    made = api.containers.create(CreateOptions(body={
        "Image": image, "Cmd": ["true"], "Labels": {"io.portside.build.output": "1"}}))
    try:
        api.containers.export(made.id, out)
    finally:
        api.containers.remove(made.id, force=True, volumes=True)  # a VOLUME's, made by create


def _export_local(api: EngineAPI, image: str, dest: Path) -> None:
    """`--output type=local,dest=DIR`: that tar unpacked into DIR (new or empty) by the
    store's safe unpacker, so nothing lands outside DIR."""
    import threading

    from portside.store.unpack import UnpackPolicy, unpack

    rfd, wfd = os.pipe()
    failed: list[BaseException] = []

    def produce() -> None:
        try:
            with os.fdopen(wfd, "wb") as w:
                _filesystem(api, image, w)
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    with os.fdopen(rfd, "rb") as r:
        try:
            unpack(r, dest, layer="the image's filesystem",
                   policy=UnpackPolicy.from_env(whiteouts=False))
        finally:
            r.close()
            thread.join()
    if failed:
        raise failed[0]


@click.group()
def builder() -> None:
    """Manage the build cache."""


@builder.command()
@click.option("-f", "--force", is_flag=True, help="Do not ask (accepted for docker compatibility).")
def prune(force: bool) -> None:
    """Remove the build cache: cached steps and RUN cache mounts (in the daemon).

    Layers kept only for the cache are removed with it; `image prune` never touches them.
    """
    from portside.cli.engine import engine
    from portside.cli.output import human_size

    report = engine().system.prune_build_cache()
    mounts = sum(1 for d in report.deleted if d.startswith("cache-mount:"))
    click.echo(f"Deleted {len(report.deleted) - mounts} cached steps and {mounts} cache mounts")
    click.echo(f"Total reclaimed space: {human_size(report.space_reclaimed)}")
