"""Test data for benchmarks: trees of files that look like a root filesystem's, seeded."""

from __future__ import annotations

import os
import random
from pathlib import Path

WORDS = b"lib usr share doc config module python the and of data value name path entry ".split()


def make_tree(top: Path, total: int, files: int, seed: int = 1, compressible: bool = True) -> int:
    """Write about `total` bytes in `files` files over nested directories; returns the bytes.

    Sizes are log-uniform (many small files, a few big ones, as in /usr); with
    `compressible` the content is half text, half random, so gzip shrinks it about 2x.
    """
    rng = random.Random(seed)
    sizes = [int(10 ** rng.uniform(2, 6.3)) for _ in range(files)]
    scale = total / sum(sizes)
    written = 0
    for i, size in enumerate(sizes):
        size = max(1, int(size * scale))
        directory = top / f"d{i % 37:02d}" / f"s{i % 11}"
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / f"f{i:05d}", "wb") as f:
            if compressible:
                text = b" ".join(rng.choice(WORDS) for _ in range(256))
                while size > 0:
                    chunk = (text * (1 + 8192 // len(text)))[:4096] + os.urandom(4096)
                    f.write(chunk[:size])
                    size -= len(chunk)
            else:
                f.write(os.urandom(size))
        written += os.path.getsize(directory / f"f{i:05d}")
    return written
