"""Removing a directory tree however deep it is.

Python 3.11's `shutil.rmtree` recurses once per level, so a tree deeper than the
recursion limit (a hostile build context, a layer) raises RecursionError, which
`ignore_errors` does not cover; rm(1) walks it without recursion.
"""

from __future__ import annotations

import os
import shutil
import subprocess


def remove_tree(path: str | os.PathLike[str]) -> None:
    """Remove `path` and everything under it; a missing path is fine, errors are ignored."""
    try:
        shutil.rmtree(path, ignore_errors=True)
    except RecursionError:
        subprocess.run(["rm", "-rf", "--one-file-system", "--", os.fspath(path)],
                       check=False, capture_output=True)
