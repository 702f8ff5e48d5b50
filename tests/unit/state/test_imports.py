"""portside.state sits at the bottom beside the store: it uses only the standard library,
portside.errors and portside.sqlitedb, so an etcd backend or any layer above can use it."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import portside.state

ALLOWED = {"portside.errors", "portside.sqlitedb"}


def test_state_imports_only_the_stdlib_errors_and_sqlitedb() -> None:
    offending = []
    for path in sorted(Path(portside.state.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
                if node.module == "portside":
                    names = [f"portside.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if name.startswith("portside.state") or name in ALLOWED:
                    continue
                if top != "portside" and top in sys.stdlib_module_names:
                    continue
                offending.append(f"{path.name}: {name}")
    assert offending == []
