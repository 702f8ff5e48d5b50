"""Stage 1: YAML reading (1.2 scalars, anchors, merge keys, tags), include, extends."""

from __future__ import annotations

from pathlib import Path

import pytest

from portside.compose.errors import ComposeError
from portside.compose.loader import Context, load_file, parse_yaml
from portside.compose.tags import Override, Reset


def test_yaml_12_scalars() -> None:
    data = parse_yaml("a: yes\nb: on\nc: 80:80\nd: 2024-01-01\ne: true\nf: 0o17\ng: 1.5\n"
                      "h: ~\ni: 0440\nj: 09\n", "f.yaml")
    assert data == {"a": "yes", "b": "on", "c": "80:80", "d": "2024-01-01", "e": True,
                    "f": 15, "g": 1.5, "h": None, "i": 0o440, "j": 9}


def test_anchors_and_merge_keys() -> None:
    data = parse_yaml("x-base: &base\n  image: busybox\n  restart: always\n"
                      "services:\n  web:\n    <<: *base\n    restart: 'no'\n", "f.yaml")
    assert data["services"]["web"] == {"image": "busybox", "restart": "no"}


def test_merge_tags() -> None:
    data = parse_yaml("a: !reset null\nb: !override [1]\nc: !override {k: v}\n", "f.yaml")
    assert data == {"a": Reset(), "b": Override([1]), "c": Override({"k": "v"})}


@pytest.mark.parametrize("text,message", [
    ("a: 1\na: 2\n", 'f.yaml: line 2 column 1: duplicate key "a"'),
    ("[1]\n", "f.yaml: the top level must be a mapping"),
    ("", "f.yaml: the file is empty"),
    ("a: [\n", "f.yaml: line 2 column 1: invalid YAML: did not find expected node content"),
    ("a: &x [1, *x]\n",
     "f.yaml: line 1 column 4: invalid YAML: found unconstructable recursive node"),
])
def test_read_errors(text: str, message: str) -> None:
    with pytest.raises(ComposeError) as err:
        parse_yaml(text, "f.yaml")
    assert str(err.value) == message


def test_alias_bomb() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    with pytest.raises(ComposeError, match="expands to more than 1000000 values"):
        parse_yaml("\n".join(lines) + "\n", "f.yaml")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_include_rebases_paths_and_uses_its_env(tmp_path: Path) -> None:
    main = write(tmp_path / "compose.yaml", "include:\n  - lib/db.yaml\n"
                 "services:\n  web:\n    image: web\n")
    write(tmp_path / "lib" / ".env", "DB_IMAGE=postgres\n")
    write(tmp_path / "lib" / "db.yaml", "services:\n  db:\n    image: ${DB_IMAGE}\n"
          "    build: ./ctx\n    volumes: ['./data:/data']\n"
          "secrets:\n  pw:\n    file: ./pw.txt\n")
    data = load_file(main, Context({}))
    db = data["services"]["db"]
    assert db["image"] == "postgres"
    assert db["build"] == {"context": str(tmp_path / "lib" / "ctx")}
    assert db["volumes"][0]["source"] == str(tmp_path / "lib" / "data")
    assert data["secrets"]["pw"]["file"] == str(tmp_path / "lib" / "pw.txt")
    assert "include" not in data


def test_include_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "a.yaml", "include: [b.yaml]\n")
    write(tmp_path / "b.yaml", "include: [a.yaml]\n")
    with pytest.raises(ComposeError, match="include cycle: a.yaml -> b.yaml -> a.yaml"):
        load_file(tmp_path / "a.yaml", Context({}))


def test_extends_same_file_and_other_file(tmp_path: Path) -> None:
    write(tmp_path / "common" / "base.yaml",
          "services:\n  base:\n    image: busybox\n    environment: [A=1, B=2]\n"
          "    volumes: ['./conf:/conf']\n    command: [sleep, '1']\n")
    main = write(tmp_path / "compose.yaml",
                 "services:\n  mid:\n    extends:\n      file: common/base.yaml\n"
                 "      service: base\n    environment:\n      B: 3\n"
                 "  web:\n    extends: mid\n    command: [sleep, '2']\n")
    web = load_file(main, Context({}))["services"]["web"]
    assert web["image"] == "busybox"
    assert web["environment"] == {"A": "1", "B": 3}
    assert web["command"] == ["sleep", "2"]
    assert web["volumes"][0]["source"] == str(tmp_path / "common" / "conf")
    assert "extends" not in web
