"""`diff` and `commit`: a container's changes are its overlay upper directory.

`changes` lists them in Docker's shape (Kind 0 modified, 1 added, 2 deleted; overlay
whiteouts are deletions). `commit` writes the upper directory as one more layer on top of
the image's (whiteouts become OCI `.wh.` entries) and records a new image whose config is
the container's.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portside.engine.state import Container

if TYPE_CHECKING:
    from portside.engine.containers import Engine

MODIFIED, ADDED, DELETED = 0, 1, 2
# Mount points of the files the engine binds into every container: not the user's changes.
ENGINE_FILES = {"etc/hostname", "etc/hosts", "etc/resolv.conf"}
_KEEP = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "Labels", "ExposedPorts", "Volumes",
         "StopSignal", "Healthcheck")


def _upper(engine: Engine, c: Container) -> Path:
    """The container's overlay upper dir (kept by the engine across stop/start); an empty
    one for a container that never ran."""
    upper = engine.rw_dir(c.id) / "diff"
    if not upper.is_dir():
        upper.mkdir(parents=True, mode=0o755)
    return upper


def changes(engine: Engine, c: Container) -> list[dict[str, Any]]:
    upper = _upper(engine, c)
    lowers = engine.lowerdirs(c.image_id)
    out: list[dict[str, Any]] = []

    def visit(rel: str) -> None:
        with os.scandir(upper / rel if rel else upper) as it:
            names = sorted(e.name for e in it)
        for name in names:
            path = f"{rel}/{name}" if rel else name
            st = os.lstat(upper / path)
            if path in ENGINE_FILES and stat.S_ISREG(st.st_mode) and st.st_size == 0:
                continue
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                out.append({"Path": "/" + path, "Kind": DELETED})
                continue
            existed = any(os.path.lexists(low / path) for low in lowers)
            out.append({"Path": "/" + path, "Kind": MODIFIED if existed else ADDED})
            if stat.S_ISDIR(st.st_mode):
                visit(path)

    visit("")
    return out


def commit(engine: Engine, c: Container, tag: str | None, comment: str = "", author: str = "",
           changes_config: dict[str, Any] | None = None,
           changes: list[str] | None = None) -> str:
    """Record the container's root filesystem as a new image; returns its id. `changes`
    are `docker commit --change` instructions (CMD, ENV, LABEL...), applied last."""
    from portside.engine.imageimport import apply_changes
    from portside.store import imagebuilder
    from portside.store.layers import LayerResult, walk, write_entries

    store = engine.images
    base = engine.images.get(c.image_id)
    manifest = store.manifest(base)
    base_config = store.config(base)
    layers = [LayerResult(d.digest, d.size, diff_id, d.media_type, 0)
              for d, diff_id in zip(manifest.layers, base_config.diff_ids, strict=True)]
    upper = _upper(engine, c)
    with store.importing():
        entries = (e for e in walk(upper, overlay=True)
                   if not (e[0].name in ENGINE_FILES and e[0].isreg() and e[0].size == 0))
        layers.append(write_entries(store.content, entries))
        config = {k: c.config[k] for k in _KEEP if c.config.get(k) is not None}
        config.update(changes_config or {})
        apply_changes(config, changes or [])
        history = list(base_config.history) + [{
            "created_by": " ".join(list(c.config.get("Entrypoint") or [])
                                   + list(c.config.get("Cmd") or [])),
            **({"comment": comment} if comment else {}),
            **({"author": author} if author else {})}]
        image = imagebuilder.new_image(store, layers, config, history,
                                       tags=[tag] if tag else [])
    return image.id
