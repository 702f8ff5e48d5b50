"""ADD <url>: download a file into the build's scratch space, checked against --checksum."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from portside.build.errors import BuildError
from portside.build.instructions import Instruction

if TYPE_CHECKING:
    from portside.build.executor import BuildRun

MAX_BYTES = 8 << 30
TIMEOUT = 60


def fetch(run: BuildRun, inst: Instruction, url: str, checksum: str | None) -> tuple[Path, str]:
    """Download `url`; returns the file and its sha256 digest (verified when given)."""
    import urllib.error
    import urllib.request

    if checksum and not checksum.startswith("sha256:"):
        raise BuildError(
            run.path, inst.line, f"ADD --checksum={checksum}: only sha256:<hex> is supported"
        )
    fd, name = tempfile.mkstemp(dir=run.tmp, prefix="url-")
    h = hashlib.sha256()
    size = 0
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "portside-build"})
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp, open(fd, "wb") as out:
            while chunk := resp.read(1 << 20):
                size += len(chunk)
                if size > MAX_BYTES:
                    raise BuildError(
                        run.path, inst.line, f"ADD {url}: larger than {MAX_BYTES} bytes"
                    )
                h.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise BuildError(run.path, inst.line, f"ADD {url}: download failed: {reason}") from None
    digest = "sha256:" + h.hexdigest()
    if checksum and digest != checksum:
        raise BuildError(
            run.path, inst.line, f"ADD {url}: checksum mismatch: expected {checksum}, got {digest}"
        )
    return Path(name), digest
