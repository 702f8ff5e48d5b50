"""Images of a project: build them (portside.build, in process, into the local store the
daemon reads), pull them and push them (portside.registry's transfer client)."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from portside.compose.errors import ComposeError
from portside.compose.model import Project, Service
from portside.compose.naming import image_name


def build(project: Project, services: list[Service], progress: str = "auto",
          no_cache: bool = False, pull: bool = False,
          say: Callable[[str], None] = lambda m: None) -> None:
    """Build each service that has a `build` section, tagged with its image name."""
    from portside.build.builder import BuildOptions
    from portside.build.builder import build as run_build
    from portside.build.output import Progress
    from portside.engine.imagepolicy import blocking
    from portside.store.images import ImageStore
    from portside.trust import enforce

    store = ImageStore()
    enforcer = enforce.in_force(store.root)  # FROM images judged as the daemon judges them
    try:
        for service in services:
            b = service.build
            if b is None:
                continue
            tag = image_name(project, service)
            say(f"Building {service.name} ({tag})")
            secrets: dict[str, Path | bytes] = {}
            with tempfile.TemporaryDirectory(prefix="compose-build-") as tmp:
                for ref in b.secrets:
                    secrets[ref.target.rsplit("/", 1)[-1]] = _secret_file(
                        project, ref.source, Path(tmp))
                options = BuildOptions(
                    context=Path(b.context),
                    dockerfile=None if b.dockerfile_inline else Path(b.dockerfile),
                    dockerfile_text=b.dockerfile_inline, tags=[tag, *b.tags],
                    build_args={k: v for k, v in b.args.items() if v is not None},
                    target=b.target, no_cache=no_cache or b.no_cache,
                    pull=pull or b.pull, secrets=secrets, labels=dict(b.labels),
                    admit_base=blocking(enforcer) if enforcer else None)
                run_build(store, options, Progress(progress))
    finally:
        store.db.close()


def _secret_file(project: Project, name: str, tmp: Path) -> Path:
    secret = project.secrets.get(name)
    if secret is None:
        raise ComposeError("", f"build.secrets.{name}", f"undefined secret \"{name}\"")
    if secret.file:
        return Path(secret.file)
    path = tmp / name  # a variable's value, for the build only, deleted after it
    path.write_text(project.environment.get(secret.environment or "", ""))
    path.chmod(0o400)
    return path


def pull(references: list[str], quiet: bool = False, insecure: bool = False) -> None:
    _transfer("pull", references, quiet, insecure)


def push(references: list[str], quiet: bool = False, insecure: bool = False) -> None:
    _transfer("push", references, quiet, insecure)


def _transfer(direction: str, references: list[str], quiet: bool, insecure: bool) -> None:
    """Pull or push each reference with the registry client, one after the other."""
    from portside.registry import progress, transfer
    from portside.store.images import ImageStore
    from portside.trust import enforce

    send = transfer.pull if direction == "pull" else transfer.push
    store = ImageStore()
    # a pull in this process is judged as the daemon's is, before anything is fetched
    enforcer = enforce.in_force(store.root) if direction == "pull" else None
    try:
        for ref in references:
            if enforcer is not None:
                asyncio.run(enforce.admit_remote(enforcer, ref))
            asyncio.run(send(store, ref, insecure=insecure,
                             progress=progress.for_terminal(quiet)))
    finally:
        store.db.close()


def prepare(runner: Any, services: list[Service], build_: bool, no_build: bool, pull_: str,
            quiet: bool = False, say: Callable[[str], None] = lambda m: None) -> None:
    """Before anything starts: build what needs building (missing, `--build`, or
    `pull_policy: build`) and pull what is missing (or everything with `--pull always`;
    `pull_` "policy" follows each service's pull_policy)."""
    to_build, to_pull = [], []
    for s in services:
        ref = image_name(runner.project, s)
        exists = runner.image_id(ref) is not None
        policy = pull_ if pull_ != "policy" else (s.pull_policy or "missing")
        if s.build is not None and not no_build and (build_ or not exists or policy == "build"):
            to_build.append(s)
        elif s.build is None and (policy == "always" or (not exists and policy != "never")):
            to_pull.append(ref)
    if to_pull:
        pull(sorted(set(to_pull)), quiet=quiet)
    if to_build:
        build(runner.project, to_build, say=say)
