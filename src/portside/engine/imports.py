"""`docker import`: a filesystem tarball becomes a one-layer image (`POST /images/create`
with `fromSrc=-`).

The upload is spooled to a file under the root, then read once through the store's tar
parser (`store.tarstream`), which checks it is a tar (plain, gzip or zstd) and gives its
diff_id; only then does the file become a layer blob, as it is (no recompression), so a
bad upload leaves nothing in the store. `changes` are Dockerfile config instructions
(CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL, ONBUILD).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from portside.errors import InvalidArgument, PortsideError
from portside.store.images import Image, ImageStore

IMPORT_CHANGES = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "USER", "VOLUME", "WORKDIR",
                  "STOPSIGNAL", "ONBUILD")


def config_from_changes(changes: list[str]) -> dict[str, Any]:
    """The image config of `--change` instructions, parsed by the Dockerfile parser."""
    from portside.build import instructions

    config: dict[str, Any] = {}
    lines = [c for c in changes if c.strip()]
    if not lines:
        return config
    for line in lines:
        keyword = line.split(None, 1)[0].upper()
        if keyword not in IMPORT_CHANGES:
            raise InvalidArgument(f"{keyword} is not a valid change command")
    try:
        parsed = instructions.parse("FROM scratch\n" + "\n".join(lines), "--change")
    except PortsideError as exc:
        raise InvalidArgument(f"invalid --change: {exc}") from None
    shell = ["/bin/sh", "-c"]
    for inst in parsed.stages[0].instructions:
        kw = inst.keyword
        if kw in ("CMD", "ENTRYPOINT"):
            command = list(inst.words) if inst.json_form else [*shell, inst.words[0]]
            config["Cmd" if kw == "CMD" else "Entrypoint"] = command
        elif kw == "ENV":
            env = {e.partition("=")[0]: e for e in config.get("Env") or []}
            for key, value in inst.pairs:
                env[key] = f"{key}={value or ''}"
            config["Env"] = list(env.values())
        elif kw == "LABEL":
            config["Labels"] = {**(config.get("Labels") or {}),
                                **{k: v or "" for k, v in inst.pairs}}
        elif kw == "EXPOSE":
            ports = dict(config.get("ExposedPorts") or {})
            for word in inst.words:
                ports[word if "/" in word else f"{word}/tcp"] = {}
            config["ExposedPorts"] = ports
        elif kw == "VOLUME":
            config["Volumes"] = {**(config.get("Volumes") or {}), **{w: {} for w in inst.words}}
        elif kw == "USER":
            config["User"] = inst.words[0]
        elif kw == "WORKDIR":
            config["WorkingDir"] = inst.words[0]
        elif kw == "STOPSIGNAL":
            config["StopSignal"] = inst.words[0]
        elif kw == "ONBUILD":
            config["OnBuild"] = [*(config.get("OnBuild") or []), inst.args]
    return config


def import_tarball(store: ImageStore, read: Callable[[int], bytes], tag: str | None,
                   message: str = "", changes: list[str] | None = None) -> Image:
    """Store the tar read by `read(n)` as a one-layer image, tagged `tag` if given."""
    from portside.store import imagebuilder
    from portside.store.layers import MEDIA_TYPES, LayerResult
    from portside.store.tarstream import Bomb, TarFormatError, Truncated, entries, open_stream
    from portside.store.unpack import UnpackPolicy

    config = config_from_changes(changes or [])
    spool_dir = Path(store.root) / "tmp"
    spool_dir.mkdir(exist_ok=True, mode=0o700)
    fd, name = tempfile.mkstemp(prefix="import-", dir=spool_dir)
    try:
        with os.fdopen(fd, "w+b") as spool:
            while chunk := read(1 << 20):
                spool.write(chunk)
            spool.seek(0)
            policy = UnpackPolicy.from_env()
            try:
                stream, compression = open_stream(spool, None, policy.max_bytes)
                for _ in entries(stream, policy.max_entries):
                    pass  # headers checked; the data is skipped by the parser
                stream.drain()
            except (TarFormatError, Truncated, Bomb, EOFError) as exc:
                raise InvalidArgument(f"the imported file is not a valid tar archive: {exc}"
                                      ) from None
            diff_id, tar_size = stream.digest(), stream.total
            spool.seek(0)
            with store.importing():
                digest = store.content.ingest(spool)
                layer = LayerResult(digest, store.content.size(digest), diff_id,
                                    MEDIA_TYPES[compression], tar_size)
                history = [{"created_by": "", "comment": message or "Imported from -"}]
                return imagebuilder.new_image(store, [layer], config, history,
                                              tags=[tag] if tag else [])
    finally:
        os.unlink(name)
