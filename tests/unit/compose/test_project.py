"""Project-level loading: files, names, variables, profiles, normalisation, `config`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from portside.compose.errors import ComposeError
from portside.compose.model import Project, to_dict
from portside.compose.project import Options, load_project

BASE = """
services:
  web:
    image: "busybox:${TAG:-1.36}"
    command: httpd -f -p "${PORT}"
    ports: ["${PUBLISHED:-8080}:80"]
    environment:
      FROM_SHELL:
      FIXED: 1
    env_file: web.env
    depends_on:
      db:
        condition: service_healthy
    volumes: ["data:/data", "./html:/www:ro"]
    secrets: [pw]
    configs: [{source: conf, target: etc/app.conf, mode: "0440"}]
    stop_grace_period: 1m30s
    mem_limit: 64m
  db:
    image: busybox
    healthcheck:
      test: test -f /ready
      interval: 2s
    deploy:
      replicas: 2
  debug:
    image: busybox
    profiles: [debug]
volumes:
  data:
  ext:
    external: true
secrets:
  pw:
    file: ./pw.txt
configs:
  conf:
    content: hello
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "My_Shop!"
    d.mkdir()
    (d / "compose.yaml").write_text(BASE)
    (d / "web.env").write_text("FROM_FILE=yes\nFIXED=from-file\n")
    (d / "pw.txt").write_text("s3cret\n")
    (d / ".env").write_text("PORT=80\nTAG=from-dotenv\n")
    monkeypatch.chdir(d)
    return d


def load(**kw: Any) -> Project:
    kw.setdefault("environ", {})
    return load_project(Options(**kw))


def test_normalised_model(folder: Path) -> None:
    p = load(environ={"FROM_SHELL": "sh", "TAG": "from-shell"})
    assert p.name == "my_shop"
    assert list(p.services) == ["web", "db"] and list(p.disabled) == ["debug"]
    web = p.services["web"]
    assert web.image == "busybox:from-shell"  # the shell wins over .env
    assert web.command == ["httpd", "-f", "-p", "80"]
    assert web.environment == {"FROM_FILE": "yes", "FIXED": "1", "FROM_SHELL": "sh"}
    assert [(x.published, x.target) for x in web.ports] == [("8080", 80)]
    assert web.volumes[1].source == str(folder / "html") and web.volumes[1].read_only
    assert web.networks == {"default": web.networks["default"]}
    assert web.depends_on["db"].condition == "service_healthy"
    assert web.secrets[0].target == "/run/secrets/pw"
    assert (web.configs[0].target, web.configs[0].mode) == ("/etc/app.conf", 0o440)
    assert web.stop_grace_period == 90
    assert web.deploy.resources.limits is not None and web.deploy.resources.limits.memory == 64 << 20
    db = p.services["db"]
    assert db.healthcheck is not None and db.healthcheck.test == ["CMD-SHELL", "test -f /ready"]
    assert db.replicas == 2
    assert p.networks["default"].name == "my_shop_default"
    assert p.volumes["data"].name == "my_shop_data" and p.volumes["ext"].name == "ext"
    assert p.secrets["pw"].file == str(folder / "pw.txt")


def test_project_name_precedence(folder: Path) -> None:
    (folder / "compose.yaml").write_text("name: from-file\n" + BASE)
    assert load().name == "from-file"
    assert load(environ={"COMPOSE_PROJECT_NAME": "from-env"}).name == "from-env"
    assert load(project_name="flag", environ={"COMPOSE_PROJECT_NAME": "env"}).name == "flag"
    with pytest.raises(ComposeError, match='invalid project name "Bad Name" \\(-p\\)'):
        load(project_name="Bad Name")


def test_profiles(folder: Path) -> None:
    assert "debug" in load(profiles=["debug"]).services
    assert "debug" in load(environ={"COMPOSE_PROFILES": "x,debug"}).services
    assert "debug" in load(profiles=["*"]).services
    assert "debug" in load(services=["debug"]).services  # named on the command line


def test_env_file_option_replaces_dotenv(folder: Path) -> None:
    (folder / "other.env").write_text("TAG=other\nPORT=81\n")
    p = load(env_files=["other.env"])
    assert p.services["web"].image == "busybox:other"
    with pytest.raises(ComposeError, match='env file ".*missing.env" not found'):
        load(env_files=["missing.env"])


def test_override_files(folder: Path) -> None:
    (folder / "compose.override.yaml").write_text(
        "services:\n  web:\n    environment: {FIXED: over}\n    ports: !reset []\n")
    web = load().services["web"]
    assert web.environment["FIXED"] == "over" and web.ports == []
    web = load(files=["compose.yaml"]).services["web"]  # -f: no automatic override
    assert web.environment["FIXED"] == "1"


def test_compose_file_variable_and_discovery(folder: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    sub = folder / "deep" / "er"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert load().working_dir == str(folder)
    (folder / "alt.yaml").write_text("services:\n  x:\n    image: busybox\n")
    assert list(load(environ={"COMPOSE_FILE": str(folder / "alt.yaml")}).services) == ["x"]


def test_no_compose_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ComposeError, match="no compose file found"):
        load()


def test_config_hash_ignores_replicas_only(folder: Path) -> None:
    before = load().services["db"].config_hash()
    (folder / "compose.yaml").write_text(BASE.replace("replicas: 2", "replicas: 5"))
    assert load().services["db"].config_hash() == before
    (folder / "compose.yaml").write_text(BASE.replace("interval: 2s", "interval: 3s"))
    assert load().services["db"].config_hash() != before
    assert load().services["web"].config_hash() == load().services["web"].config_hash()


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "portside", "compose", *args], cwd=cwd,
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})


def test_config_command_yaml_and_json(folder: Path) -> None:
    out = run_cli("config", cwd=folder)
    assert out.returncode == 0, out.stderr
    as_yaml = yaml.safe_load(out.stdout)
    out = run_cli("config", "--format", "json", cwd=folder)
    assert json.loads(out.stdout) == as_yaml
    assert as_yaml == to_dict(load(environ={"PATH": "/usr/bin:/bin"}))
    assert as_yaml["services"]["web"]["ports"] == [
        {"target": 80, "published": "8080", "protocol": "tcp", "mode": "ingress"}]
    assert as_yaml["services"]["web"]["stop_grace_period"] == "1m30s"
    # the printed model loads back as a compose file and gives the same model
    (folder / "printed.yaml").write_text(out.stdout)
    again = run_cli("-f", "printed.yaml", "config", "--format", "json", cwd=folder)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["services"] == as_yaml["services"]
    assert run_cli("config", "--services", cwd=folder).stdout == "web\ndb\n"
    assert run_cli("--profile", "debug", "config", "--services", cwd=folder
                   ).stdout == "web\ndb\ndebug\n"


def test_config_command_error_is_one_line(folder: Path) -> None:
    (folder / "compose.yaml").write_text(BASE.replace('["${PUBLISHED:-8080}:80"]',
                                                      '["8080:80", "80:80:80"]'))
    out = run_cli("config", cwd=folder)
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr == 'Error: compose.yaml: services.web.ports[1]: invalid port "80:80:80"\n'
