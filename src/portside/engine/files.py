"""Per-container files the engine owns: /etc/hostname, /etc/hosts, /etc/resolv.conf."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from portside.engine import spec as spec_mod
from portside.engine.state import Container


def etc_mounts(d: Path, c: Container, files: dict[str, str]) -> list[Any]:
    """/etc/hostname, /etc/hosts and /etc/resolv.conf, written per container (by the
    network layer when it set up the network) and bind mounted like Docker does, unless
    the user mounts their own there. `d` is the container's directory, for the own copies."""
    from portside.runtime import Mount

    taken = {m["Destination"] for m in c.mounts}
    if files:
        return [Mount(dest, "bind", src, ["rbind", "rw"]) for dest, src in files.items()
                if dest not in taken]
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    hostname = spec_mod.default_hostname(c.id, c.config)
    network = c.host_config.get("NetworkMode") or "default"
    own = {"hostname": f"{hostname}\n",
           "hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                    f"127.0.1.1\t{hostname}\n"}
    resolv = ""
    if network != "none":
        with contextlib.suppress(OSError):
            resolv = Path("/etc/resolv.conf").read_text()
    own["resolv.conf"] = resolv
    out = []
    for name, text in own.items():
        path = d / name
        path.write_text(text)
        if f"/etc/{name}" not in taken:
            out.append(Mount(f"/etc/{name}", "bind", str(path), ["rbind", "rw"]))
    return out
