"""Only `portside.client` (and the daemon's own handlers) may know the daemon's HTTP paths:
everything else talks to an engine through `portside.engine.interface`."""

from __future__ import annotations

import ast
from pathlib import Path

import portside

SRC = Path(portside.__file__).parent
PREFIXES = ("/containers", "/images", "/networks", "/volumes", "/exec", "/events", "/commit",
            "/build", "/system", "/info", "/version", "/_ping", "/services", "/tasks",
            "/swarm", "/nodes", "/secrets", "/configs")
# the client, and the servers
ALLOWED = ("client/", "engine/api/", "network/api.py", "orchestrator/api.py",
           "trust/secrets/api.py")


def paths_in(source: str) -> list[tuple[int, str]]:
    """The string constants (f-string parts included) that start like a daemon API path."""
    return [(node.lineno, node.value) for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and node.value.startswith(PREFIXES)]


def test_the_scan_finds_plain_and_formatted_paths() -> None:
    found = paths_in('c.get("/containers/json")\nc.post(f"/networks/{n}/connect")\n'
                     'x = "/var/lib/portside"\n')
    assert found == [(1, "/containers/json"), (2, "/networks/")]


def test_no_daemon_api_path_outside_the_client() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith(ALLOWED):
            continue
        offenders += [f"{rel}:{line}: {text!r}" for line, text in paths_in(path.read_text())]
    assert offenders == [], "raw daemon API paths outside portside.client:\n" + "\n".join(
        offenders)
