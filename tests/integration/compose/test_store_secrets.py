"""Compose's `secrets:` from the daemon's secret store (`external: true`, as a stack
uses them), beside a `file:` secret on the project's own tmpfs."""

from __future__ import annotations

from .conftest import Project

APP = """
services:
  app:
    image: busybox
    network_mode: none
    command: ["sleep", "1000"]
    stop_grace_period: 1s
    secrets:
      - db_pw
      - {source: api, target: api.key, uid: "100", mode: 0400}
      - local
secrets:
  db_pw:
    external: true
    name: se-db-pw
  api:
    external: true
    name: se-api
  local:
    file: ./local.txt
"""


def test_external_secrets_come_from_the_store(project: Project) -> None:
    d = project.daemon
    d.cli("secret", "create", "se-db-pw", "-", input="from-the-store")
    d.cli("secret", "create", "se-api", "-", input="api-value")
    project.write(APP)
    (project.folder / "local.txt").write_text("from-a-file")
    project.compose("up", "-d")
    out = project.compose("exec", "-T", "app", "sh", "-c",
                          "cat /run/secrets/db_pw; echo; cat /run/secrets/api.key; echo;"
                          " stat -c '%a %u' /run/secrets/api.key; cat /run/secrets/local").stdout
    assert out.splitlines() == ["from-the-store", "api-value", "400 100", "from-a-file"]
    inspect = d.cli("inspect", f"{project.name}-app-1").stdout
    assert "from-the-store" not in inspect and "se-db-pw" in inspect
    project.compose("down")

    project.write(APP.replace("name: se-api", "name: se-absent"))
    r = project.compose("up", "-d", check=False)
    assert r.returncode != 0 and "secret 'se-absent' not found" in r.stderr
    project.compose("down")
