"""What a stage is between steps: its layers, image config, history and cache key."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from typing import Any

from portside.build.stagefs import LayerRef
from portside.times import parse_time

DEFAULT_SHELL = ["/bin/sh", "-c"]
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class StageState:
    """A stage's image so far; `key` chains the cache keys of every step that made it."""

    key: str
    layers: list[LayerRef] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    created: float = 0.0
    args: dict[str, str] = field(default_factory=dict)  # ARGs declared in this stage
    cmd_from_base: bool = False
    steps: list[dict[str, Any]] = field(default_factory=list)  # the inline cache records
    base_image: tuple[str, str] | None = None  # (name as written, manifest digest)

    def clone(self) -> StageState:
        return copy.deepcopy(self)

    # -- environment --

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.config.get("Env") or []:
            name, _, value = str(item).partition("=")
            out[name] = value
        return out

    def set_env(self, name: str, value: str) -> None:
        items = [e for e in self.config.get("Env") or [] if str(e).partition("=")[0] != name]
        items.append(f"{name}={value}")
        self.config["Env"] = items

    def expansion_env(self) -> dict[str, str]:
        """What `$VAR` sees: build args declared in the stage, then ENV (ENV wins)."""
        return {**self.args, **self.env()}

    def run_env(self) -> dict[str, str]:
        """What a RUN command sees: ENV, plus the stage's ARGs where no ENV has the name."""
        return {**self.args, **self.env()}

    @property
    def shell(self) -> list[str]:
        return list(self.config.get("Shell") or DEFAULT_SHELL)

    @property
    def workdir(self) -> str:
        return str(self.config.get("WorkingDir") or "/")


def scratch(platform: str = "") -> StageState:
    key = "sha256:" + hashlib.sha256(f"scratch {platform}".encode()).hexdigest()
    return StageState(key=key, config={"Env": [f"PATH={DEFAULT_PATH}"]})


def from_image(
    manifest_digest: str, layers: list[LayerRef], config_doc: dict[str, Any]
) -> StageState:
    """A stage starting from a stored image: its layers, config and history carried over."""
    key = "sha256:" + hashlib.sha256(f"image {manifest_digest}".encode()).hexdigest()
    config = dict(config_doc.get("config") or {})
    created = parse_time(str(config_doc.get("created") or "")) or 0.0
    return StageState(
        key=key,
        layers=list(layers),
        config=config,
        history=[dict(h) for h in config_doc.get("history") or [] if isinstance(h, dict)],
        created=created,
        cmd_from_base=bool(config.get("Cmd")),
    )
