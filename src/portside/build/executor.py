"""Apply a stage's instructions, one cached step at a time.

Each step has a cache key (its parent's key, the instruction, what it reads); a hit reuses
the recorded result (the very layer blob, and its time, so a fully cached build gives the
same image id), a miss runs the step and records it. Config-only steps change the image
config and leave an `empty_layer` history entry; COPY, ADD, WORKDIR (when it creates the
directory) and RUN add a layer.
"""

from __future__ import annotations

import os
import posixpath
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portside.build import copying
from portside.build.cache import CACHE_HOLDER, BuildCache, step_key
from portside.build.configsteps import apply_config
from portside.build.context import BuildContext
from portside.build.errors import BuildError
from portside.build.instructions import Dockerfile, Instruction, Stage, parse_trigger
from portside.build.shellwords import SubstitutionError, expand, expand_words
from portside.build.stagefs import LayerRef, StageFS, remember_index
from portside.build.state import StageState
from portside.errors import ImageUnknown, InvalidArgument, PortsideError
from portside.store.images import Image, ImageStore
from portside.store.layers import LayerResult, write_entries

if TYPE_CHECKING:
    from portside.build.output import Progress


class BuildRun:
    """One build: the store, cache, context and Dockerfile, and the stages built so far."""

    def __init__(
        self,
        store: ImageStore,
        cache: BuildCache,
        ctx: BuildContext,
        dockerfile: Dockerfile,
        progress: Progress,
        tmp: Path,
        *,
        build_args: dict[str, str],
        no_cache: bool = False,
        epoch: int | None = None,
        secrets: dict[str, Path | bytes] | None = None,
        pull: bool = False,
        network: str = "default",
        admit_base: Callable[[str, str], None] | None = None,
    ) -> None:
        self.store, self.cache, self.ctx, self.dockerfile = store, cache, ctx, dockerfile
        self.progress, self.tmp = progress, tmp
        self.path = dockerfile.path
        self.build_args = build_args
        self.used_args: set[str] = set()
        self.no_cache = no_cache
        self.epoch = epoch
        self.secrets = secrets or {}
        self.compression = "gzip"
        self.now = time.time()
        self.results: dict[int, StageState] = {}
        self.meta_args = self._meta_args()
        self._runtime: Any = None
        self.pull = pull
        self.network = network  # RUN's network when the step does not say
        # Unique per build: a daemon runs several at once in one process.
        self.holder = f"build:{os.getpid()}:{int(self.now * 1000)}:{os.urandom(4).hex()}"
        self.pulled: dict[str, Image] = {}
        self.admit_base = admit_base

    # -- helpers the steps share --

    def expand(self, inst: Instruction, word: str, env: dict[str, str]) -> str:
        try:
            return expand(word, env, self.dockerfile.escape)
        except SubstitutionError as exc:
            raise BuildError(self.path, inst.line, f"{inst.keyword}: {exc}") from None

    def expand_words(self, inst: Instruction, text: str, env: dict[str, str]) -> list[str]:
        try:
            return expand_words(text, env, self.dockerfile.escape)
        except SubstitutionError as exc:
            raise BuildError(self.path, inst.line, f"{inst.keyword}: {exc}") from None

    def fs(self, state: StageState) -> StageFS:
        return StageFS(self.store.content, state.layers)

    def mtime(self, value: int | None) -> int:
        """A timestamp for a layer entry: clamped to SOURCE_DATE_EPOCH when reproducible."""
        t = int(self.now) if value is None else value
        return min(t, self.epoch) if self.epoch is not None else t

    def created_now(self) -> float:
        return float(self.epoch) if self.epoch is not None else time.time()

    def stage_state(self, name: str) -> StageState | None:
        stage = self.dockerfile.stage(name)
        return None if stage is None else self.results.get(stage.index)

    def _admit(self, inst: Instruction, ref: str, image: Image) -> None:
        """The image policy's verdict on a base image; a refusal fails the build at `inst`."""
        if self.admit_base is None:
            return
        try:
            self.admit_base(ref, image.index_digest or image.manifest_digest)
        except PortsideError as exc:
            raise BuildError(self.path, inst.line, f"{inst.keyword} {ref}: {exc}") from None

    def image_for(self, inst: Instruction, ref: str) -> Image:
        """A base or --from image: from the store, pulled when missing (or with --pull)."""
        from portside.build.remote import RemoteFailed, pull

        if ref in self.pulled:
            return self.pulled[ref]
        try:
            if not self.pull:
                image = self.store.get(ref)
                self._admit(inst, ref, image)
                self.pulled[ref] = image
                self.store.lease(self.holder, image)  # no `rmi` while the build reads it
                return image
        except (ImageUnknown, InvalidArgument):
            pass
        try:
            image = pull(self.store, ref, self.progress)
            self._admit(inst, ref, image)
            self.pulled[ref] = image
            self.store.lease(self.holder, image)
            return image
        except (RemoteFailed, InvalidArgument) as exc:
            what = "stage or image" if inst.keyword == "COPY" else "image"
            raise BuildError(
                self.path,
                inst.line,
                f"{inst.keyword}: no {what} named {ref!r}"
                f" (not a stage of this Dockerfile nor an image in the local store;"
                f" {exc})",
            ) from None

    def image_layers(self, image: Image) -> list[LayerRef]:
        manifest = self.store.manifest(image)
        diff_ids = self.store.config(image).diff_ids
        return [
            LayerRef(d.digest, d.size, diff, d.media_type)
            for d, diff in zip(manifest.layers, diff_ids, strict=True)
        ]

    cgroup_parent = "portside-build"

    @property
    def used_runtime(self) -> bool:
        return self._runtime is not None

    def runtime(self) -> Any:
        """The container runtime RUN steps use (created on first use)."""
        if self._runtime is None:
            from portside.runtime import Runtime

            self._runtime = Runtime(self.store.root / "build" / "containers", self.cgroup_parent)
        return self._runtime

    def download(self, inst: Instruction, url: str, checksum: str | None) -> tuple[Path, str]:
        from portside.build.fetch import fetch

        return fetch(self, inst, url, checksum)

    def _meta_args(self) -> dict[str, str]:
        """Global ARGs (before the first FROM): visible in FROM lines only."""
        from portside.build.graph import platform_args

        values = dict(platform_args())
        for inst in self.dockerfile.global_args:
            for name, default in inst.pairs:
                if name in self.build_args:
                    values[name] = self.build_args[name]
                    self.used_args.add(name)
                elif default is not None:
                    values[name] = self.expand(inst, default, values)
        return values

    # -- stages --

    def build_stage(self, stage: Stage, base: str) -> StageState:
        """Run every instruction of `stage` on top of `base` (expanded FROM argument)."""
        triggers: list[str] = []
        if stage.platform:
            self._check_platform(stage)
        if base.lower() == "scratch":
            from portside.build.state import scratch

            state = scratch()
            how, ident = "FROM scratch", ""
        elif (parent := self.dockerfile.stage(base)) is not None and parent.index < stage.index:
            state = self.results[parent.index].clone()
            how, ident = f"FROM {parent.display}", state.key
        else:
            from portside.build.state import from_image

            image = self.image_for(Instruction("FROM", stage.line, stage.line, "", ""), base)
            ident = image.id
            doc = self.store.config(image).raw
            state = from_image(image.manifest_digest, self.image_layers(image), doc)
            triggers = [str(t) for t in state.config.pop("OnBuild", None) or []]
            state.base_image = (base, image.manifest_digest)
            how = f"FROM {base}@{image.manifest_digest[:19]}"
        state.args = {}
        if self.epoch is not None:  # clamped timestamps make different layers: key them apart
            state.key = step_key(state.key, "SOURCE_DATE_EPOCH", epoch=self.epoch)
        state.cmd_from_base = bool(state.config.get("Cmd"))
        steps = [parse_trigger(t, self.path, stage.line, self.dockerfile.escape) for t in triggers]
        steps += stage.instructions
        platform = f"--platform={stage.platform} " if stage.platform else ""
        written = f"FROM {platform}{stage.base}" + (f" AS {stage.name}" if stage.name else "")
        self.progress.step(
            self._label(stage, 0, len(steps)), how, "RESOLVED", 0.0, ident=ident, written=written
        )
        for n, inst in enumerate(steps, 1):
            self.step(stage, state, inst, n, len(steps))
        self.results[stage.index] = state
        return state

    def _check_platform(self, stage: Stage) -> None:
        """FROM --platform: only the host's platform can be built (RUN executes natively)."""
        from portside.build.graph import platform_args

        inst = Instruction("FROM", stage.line, stage.line, "", "")
        wanted = self.expand(inst, str(stage.platform), self.meta_args)
        host = platform_args()["TARGETPLATFORM"]
        if wanted.split("/")[:2] != host.split("/")[:2]:
            raise BuildError(
                self.path,
                stage.line,
                f"FROM --platform={wanted}: this host builds only for {host} (no emulation)",
            )

    def _label(self, stage: Stage, n: int, total: int) -> str:
        return f"[{stage.display} {n}/{total}]"

    def step(self, stage: Stage, state: StageState, inst: Instruction, n: int, total: int) -> None:
        started = time.monotonic()
        env = state.expansion_env()
        layer_step = inst.keyword in ("COPY", "ADD", "RUN", "WORKDIR")
        run: Callable[[], LayerResult | None] | None = None
        if inst.keyword in ("COPY", "ADD"):
            planned = copying.plan(self, state, inst, env)
            key = step_key(state.key, inst.original, **planned.inputs)
            run = planned.execute
        elif inst.keyword == "RUN":
            key, run = self._run(state, inst, env)
        elif inst.keyword == "WORKDIR":
            key, run = self._workdir(state, inst, env)
        else:
            apply_config(self, state, inst, env)
            key = step_key(state.key, inst.original, config=state.config, args=state.args)
        hit = None if self.no_cache else self.cache.lookup(key)
        if (
            hit is not None
            and hit.get("layer")
            and not self.store.content.exists(hit["layer"]["digest"])
        ):
            hit = None  # the blob was collected since: build the step again
        if hit is None:
            if inst.keyword == "RUN":  # its output follows: say which step it belongs to
                self.progress.running(self._label(stage, n, total), inst.original)
            result = run() if run else None
            hit = {
                "created": self.created_now(),
                "layer": _layer_json(result) if result is not None else None,
            }
            self.cache.store(key, hit)
            if hit["layer"]:
                self.store.lease_content(CACHE_HOLDER, hit["layer"]["digest"])
            status = "DONE"
        else:
            status = "CACHED"
        state.key = key
        state.created = float(hit["created"])
        entry: dict[str, Any] = {
            "created": _rfc3339(state.created),
            "created_by": inst.original + (" # buildkit" if layer_step else ""),
            "comment": f"{self.path}:{inst.line}",
        }
        if hit.get("layer"):
            state.layers.append(LayerRef.from_json(hit["layer"]))
        else:
            entry["empty_layer"] = True
        state.steps.append(
            {
                "key": key,
                "created": state.created,
                "layer": len(state.layers) - 1 if hit.get("layer") else None,
            }
        )
        state.history.append(entry)
        self.progress.step(
            self._label(stage, n, total),
            inst.original,
            status,
            time.monotonic() - started,
            ident=key,
            written=inst.original,
        )

    def _workdir(
        self, state: StageState, inst: Instruction, env: dict[str, str]
    ) -> tuple[str, Callable[[], LayerResult | None]]:
        apply_config(self, state, inst, env)
        path = state.workdir
        key = step_key(state.key, inst.original, workdir=path)  # the tree follows from the parent

        def create() -> LayerResult | None:
            fs = self.fs(state)
            missing = []
            p = path
            while p not in ("/", "") and fs.lookup(p) is None:
                missing.append(p)
                p = posixpath.dirname(p)
            if not missing:
                return None
            # As BuildKit: the directories belong to the USER in effect, if any.
            user = str(state.config.get("User") or "")
            uid, gid = (
                copying.user_ids(self, state, inst, user, f"(USER {user})") if user else (0, 0)
            )
            entries = []
            for d in reversed(missing):
                ti = tarfile.TarInfo(d.lstrip("/"))
                ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, self.mtime(None)
                ti.uid, ti.gid = uid, gid
                entries.append((ti, None))
            result = write_entries(self.store.content, entries, self.compression)
            remember_index(result.diff_id, [info for info, _ in entries])
            return result

        return key, create

    def _run(
        self, state: StageState, inst: Instruction, env: dict[str, str]
    ) -> tuple[str, Callable[[], LayerResult | None]]:
        from portside.build import running

        return running.plan(self, state, inst, env)


def _layer_json(result: LayerResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {
        "digest": result.digest,
        "size": result.size,
        "diff_id": result.diff_id,
        "media_type": result.media_type,
    }


def _rfc3339(ts: float) -> str:
    from portside.store.imagebuilder import rfc3339

    return rfc3339(ts)
